"""Engines: the same cells on serial, a process pool and a real local Ray instance give the same rows."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import warnings

import pytest

from eegrobust.data import ConfigError
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.engines import Engine, _host_port, check_ray_address
from eegrobust.harness.store import Store
from eegrobust.harness.suite import run_suite

# every threat model, a gray-box group sharing a substitute, the in-cell Jacobian substitute, a query attack
GRID = dict(models=("toy", "eegnet"), white_box=("fgsm", "linf_pgd"), gray_box=("ufgsm", "linf_pgd"),
            black_box=("substitute", "square"), epsilons=(0.1, 1.0), n_seed_trials=20, max_queries=20,
            pgd_steps=5, transfer_steps=3, substitute_rounds=1, substitute_arch="toy",
            train={"max_epochs": 3, "patience": None})
TIMING = ("wall_s",)


def comparable(result):
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in result.rows]
    return json.dumps(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)), sort_keys=True,
                      default=str)


@pytest.fixture(scope="module")
def serial(split, _toy_victims):
    train, test = split
    return run_suite(SuiteConfig(**GRID), train=train, test=test, victims=_toy_victims, progress=False)


def test_process_pool_gives_the_serial_rows(serial, split, _toy_victims, tmp_path):
    train, test = split
    store = Store(tmp_path / "study")
    result = run_suite(SuiteConfig(**GRID), train=train, test=test, victims=_toy_victims, progress=False,
                       store=store, engine=Engine("process", jobs=2))
    assert comparable(result) == comparable(serial)
    assert result.outcomes == serial.outcomes  # per-trial predictions and queries too
    # the workers wrote every cell to the store themselves
    assert len(list((tmp_path / "study" / "cells").glob("*.json"))) == result.provenance["n_cells"]
    assert result.provenance["n_cells_run"] == result.provenance["n_cells"]


def test_ray_gives_the_serial_rows(serial, split, _toy_victims):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'eegrobust[ray]'")
    train, test = split
    result = run_suite(SuiteConfig(**GRID), train=train, test=test, victims=_toy_victims, progress=False,
                       engine=Engine("ray", jobs=2))
    assert comparable(result) == comparable(serial)
    assert [e["model"] for e in result.examples] == [e["model"] for e in serial.examples]


@pytest.mark.parametrize("kw, match", [
    ({"name": "threads"}, r"engine must be one of .*'process'"),
    ({"name": "process", "jobs": 0}, r"--jobs must be an integer >= 1, got 0"),
    ({"name": "serial", "jobs": 4}, r"--jobs 4 needs a parallel engine: add --engine process"),
    ({"name": "process", "ray_address": "127.0.0.1:6379"}, r"--ray-address '127.0.0.1:6379' needs --engine ray"),
    ({"name": "ray", "ray_address": "localhost"}, r"--ray-address must be host:port .*got 'localhost'"),
])
def test_bad_engine_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        Engine(**kw)


def test_ray_address_that_does_not_answer():
    with socket.socket() as s:  # a free loopback port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"--ray-address '127.0.0.1:{port}' does not answer"):
        check_ray_address(f"127.0.0.1:{port}", timeout=2)


@contextlib.contextmanager
def _listener(reply: bytes | None):
    """A loopback port that accepts connections and then stays silent (None) or sends ``reply`` and ends its side."""
    server = socket.create_server(("127.0.0.1", 0))
    conns = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)
            if reply is not None:
                conn.sendall(reply)
                conn.shutdown(socket.SHUT_WR)  # not close(): the client's bytes would then reset the connection

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for c in conns:
            c.close()


@pytest.mark.parametrize("reply, match", [
    (None, r"does not answer \(no reply within 1 s\)"),  # accepts, never answers: ray.init would retry for minutes
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", r"answers, but not as a Ray cluster"),
    (b"", r"answers, but not as a Ray cluster"),  # hangs up at once
])
def test_ray_address_that_is_not_a_ray_head(reply, match):
    with _listener(reply) as port, pytest.raises(ConfigError, match=rf"--ray-address '127.0.0.1:{port}' {match}"):
        check_ray_address(f"127.0.0.1:{port}", timeout=1)


def test_ray_client_address_is_host_and_port():
    assert _host_port("ray://10.0.0.5:10001") == ("10.0.0.5", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)


def test_ray_address_joins_a_running_cluster(serial, split, _toy_victims, tmp_path, monkeypatch):
    """A Ray head started by another process (as `ray start --head` does on a cluster): the cells run on it."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'eegrobust[ray]'")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    head = subprocess.Popen(
        [sys.executable, "-c", ("import sys, ray; ray.init(num_cpus=2, include_dashboard=False, "
                                "logging_level='ERROR'); print(ray.get_runtime_context().gcs_address, flush=True); "
                                "sys.stdin.read(); ray.shutdown()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "GIT_PYTHON_REFRESH": "quiet"})
    try:
        address = head.stdout.readline().strip()
        assert address, "the Ray head did not start"
        check_ray_address(address)  # a real head answers the probe
        train, test = split
        if tuple(int(v) for v in ray.__version__.split(".")[:2]) >= (2, 59):  # token authentication by default
            # without the token: one line naming the address and the fix (in another process: Ray keeps its
            # authentication settings from the first ray.init of a process)
            code = ("from eegrobust.harness.engines import Engine, _run_ray\n"
                    f"try: _run_ray(Engine('ray', jobs=1, ray_address='{address}'), [], None)\n"
                    "except Exception as e: print(type(e).__name__, e)")
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                                 env={k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"})
            assert out.stdout.startswith(f"ConfigError --ray-address '{address}': Ray could not join"), out.stdout
            assert "RAY_AUTH_MODE=token" in out.stdout
            monkeypatch.setenv("RAY_AUTH_MODE", "token")
        result = run_suite(SuiteConfig(**GRID), train=train, test=test, victims=_toy_victims, progress=False,
                           store=Store(tmp_path / "study"), engine=Engine("ray", jobs=2, ray_address=address))
        assert comparable(result) == comparable(serial)
        assert len(list((tmp_path / "study" / "cells").glob("*.json"))) == result.provenance["n_cells"]
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()


def test_more_workers_than_cores_is_said():
    from eegrobust.harness.engines import preflight, usable_cores

    n = usable_cores()
    with pytest.warns(UserWarning, match=rf"--jobs {n + 1} runs {n + 1} workers on the {n} cores"):
        preflight(Engine("process", jobs=n + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        preflight(Engine("process", jobs=n))  # one per core: nothing to say
        preflight(Engine("serial"))
