"""Engines: the same cells on serial, a process pool and a real local Ray instance give the same rows."""

import json

import pytest

from eegrobust.data import ConfigError
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.engines import Engine, check_ray_address
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
    import socket

    with socket.socket() as s:  # a free loopback port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=rf"--ray-address '127.0.0.1:{port}' does not answer"):
        check_ray_address(f"127.0.0.1:{port}", timeout=2)
