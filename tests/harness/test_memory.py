"""run_cell hands freed heap memory back to the OS (glibc malloc_trim), so a study's memory does not creep."""

from __future__ import annotations

import ctypes
import sys

import pytest

from eegrobust.harness.cell import release_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc are Linux's")
def test_release_memory_returns_freed_heap_pages():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 1024  # below glibc's mmap threshold: these live in the heap
    ptrs = [libc.malloc(size) for _ in range(2000)]  # 125 MB
    for p in ptrs:
        ctypes.memset(p, 1, size)
    pin = libc.malloc(size)  # holds the heap's top, so free() alone cannot shrink it
    try:
        for p in ptrs:
            libc.free(p)
        freed = _rss_mb()
        release_memory()
        assert freed - _rss_mb() > 60  # most of the 125 MB went back to the OS
    finally:
        libc.free(pin)


def test_release_memory_is_safe_to_call_repeatedly():
    assert release_memory() is None and release_memory() is None
