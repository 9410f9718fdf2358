"""Seeded work that leaves the caller's random generators as they were, on the CPU and on every CUDA device."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with torch's global generators seeded by ``seed``; restore them (CPU and CUDA) afterwards.

    ``torch.manual_seed`` seeds the CUDA generators too, so forking the CPU generator alone (``fork_rng(devices=[])``)
    would reseed the caller's CUDA generator behind its back.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
