"""Engines that run a fold's planned cells: ``serial`` (in this process), ``process`` (a local pool) and ``ray``.

Every engine runs the same cells with the same seeds and writes the same results: rows agree on every engine
apart from their timing fields (``wall_s``). The victims and gray-box substitutes are trained (or loaded) by the
driver through the victim cache, exactly as the serial engine does, and handed to the workers as safe bundles
(`models.save_bundle`: weights and JSON, never a pickle); a worker runs one task at a time on one torch thread,
so two levels of parallelism never compete for the cores. A task is one cell, or all the gray-box cells of one
substitute (they share the trials crafted on it, as in the serial engine). With a store on disk each worker writes
its cells there itself and the driver reads them back; nothing already written is lost when a cell fails, and a
resumed study skips it.

The ``ray`` engine needs the optional extra ``pip install 'eegrobust[ray]'``. Without ``ray_address`` it starts a
local Ray instance with ``jobs`` CPUs and shuts it down afterwards; with one it joins that cluster (checked first:
an address that does not answer is an error naming it). Each task asks for one CPU and, when the cells run on
CUDA, ``gpu_fraction`` of a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..data._checks import ConfigError, check_option

ENGINES = ("serial", "process", "ray")
#: Seconds to wait for a Ray address to answer before giving up.
RAY_CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Engine:
    """How to run cells: ``name`` in `ENGINES`, ``jobs`` parallel workers, and Ray's address and GPU share.

    Parameters
    ----------
    name : {"serial", "process", "ray"}, default="serial"
    jobs : int >= 1 or None
        Parallel workers; None: the number of CPU cores (``serial`` runs one).
    ray_address : str or None
        ``host:port`` of a running Ray cluster (``ray`` only); None: start a local one.
    gpu_fraction : float in (0, 1], default=0.25
        The share of a GPU each Ray task asks for when the cells run on CUDA.
    """

    name: str = "serial"
    jobs: int | None = None
    ray_address: str | None = None
    gpu_fraction: float = 0.25

    def __post_init__(self):
        check_option("engine", self.name, ENGINES)
        if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1):
            raise ConfigError(f"--jobs must be an integer >= 1, got {self.jobs!r}; give e.g. --jobs 2.")
        if self.name == "serial" and self.jobs not in (None, 1):
            raise ConfigError(f"--jobs {self.jobs} needs a parallel engine: add --engine process (or ray).")
        if self.ray_address is not None and self.name != "ray":
            raise ConfigError(f"--ray-address {self.ray_address!r} needs --engine ray.")
        if self.ray_address is not None:
            _host_port(self.ray_address)
        if not (isinstance(self.gpu_fraction, (int, float)) and 0 < self.gpu_fraction <= 1):
            raise ConfigError(f"gpu_fraction must be a number in (0, 1], got {self.gpu_fraction!r}.")

    @property
    def n_jobs(self) -> int:
        return 1 if self.name == "serial" else (self.jobs or usable_cores())


def make_engine(engine=None, *, jobs=None, ray_address=None) -> Engine:
    """An `Engine` from an Engine, a name or None (serial)."""
    if isinstance(engine, Engine):
        return engine
    return Engine("serial" if engine is None else engine, jobs, ray_address)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and batch schedulers narrow)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


RAY_MISSING = "--engine ray needs Ray: pip install 'eegrobust[ray]' (or use --engine process)."


def preflight(engine) -> Engine:
    """``engine`` as an `Engine`, checked before anything is trained: Ray installed, a --ray-address answering."""
    engine = make_engine(engine)
    cores = usable_cores()
    if engine.name != "serial" and engine.ray_address is None and engine.n_jobs > cores:
        warnings.warn(f"--jobs {engine.n_jobs} runs {engine.n_jobs} workers on the {cores} cores this process may "
                      f"use: they take turns on the cores, each holding its own copy of the victims; --jobs {cores} "
                      f"is usually as fast.", stacklevel=2)
    if engine.name == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(RAY_MISSING)
        if engine.ray_address is not None:
            check_ray_address(engine.ray_address)
    return engine


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = str(address).removeprefix("ray://").rpartition(":")  # ray://: a Ray Client address
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--ray-address must be host:port (e.g. 127.0.0.1:6379), got {address!r}.")
    return host.strip("[]"), int(port)


#: An HTTP/2 client connection preface and an empty SETTINGS frame: a Ray head (its GCS and its client server
#: speak gRPC, over HTTP/2) answers with a SETTINGS frame of its own.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Raise ConfigError naming ``address`` unless a gRPC server (a Ray head) answers there within ``timeout`` s.

    A port that accepts connections but never answers (a firewall or proxy that accepts everything, a stopped
    process's listener) makes ``ray.init`` retry for minutes, so the address is asked for an HTTP/2 SETTINGS frame
    first. With ``RAY_USE_TLS`` set only the connection is checked (the handshake is Ray's to do)."""
    host, port = _host_port(address)
    fix = "start the cluster with `ray start --head` or leave --ray-address out to run a local Ray instance."
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            sock.settimeout(timeout)
            sock.sendall(_H2_PREFACE)
            reply = b""
            while len(reply) < 9:
                chunk = sock.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except TimeoutError:
        raise ConfigError(f"--ray-address {address!r} does not answer (no reply within {timeout:g} s); "
                          f"{fix}") from None
    except OSError as err:
        raise ConfigError(f"--ray-address {address!r} does not answer ({err.strerror or type(err).__name__}; waited "
                          f"up to {timeout:g} s); {fix}") from None
    if len(reply) < 9 or reply[3] != 4:  # frame type 0x4: SETTINGS
        raise ConfigError(f"--ray-address {address!r} answers, but not as a Ray cluster (no gRPC reply); check the "
                          f"host and port (`ray status` on the head prints them) or {fix}")


# ------------------------------------------------------------------------------------------------ worker side
_MODELS: dict = {}


def _model(path: str, device: str):
    """A bundle loaded once per worker process (tasks of the same victim reuse it)."""
    from ..models import load_bundle

    key = (path, device)
    if key not in _MODELS:
        _MODELS[key] = load_bundle(path).to(device).eval()
    return _MODELS[key]


class _Bundles(dict):
    """Substitutes by architecture, each loaded from its bundle when a transfer cell first needs it."""

    def __init__(self, paths: dict, device: str):
        super().__init__(paths)
        self.device = device

    def __getitem__(self, arch):
        return _model(dict.__getitem__(self, arch), self.device)


def run_task(task: dict) -> list:
    """Run one task's cells in a worker; return their results as dicts (or None for each one written to a store)."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # foolbox imports git-python
    import torch

    from .cell import FoldContext, record_victim, run_cell
    from .store import Store

    torch.set_num_threads(task["threads"])
    ctx = FoldContext(task["test"], task["unit"], task["n_seed_trials"], _Bundles(task["substitutes"], task["device"]),
                      task.get("cache_dir"))
    store = Store(task["store"]) if task["store"] else None
    out = []
    for cell, path, victim_hash in task["cells"]:
        victim = _model(path, task["device"])
        result = record_victim(run_cell(cell, victim, ctx, keep_example=cell.attack.threat_model == "white_box"),
                               victim, victim_hash)
        if store is not None:
            store.put(result)
            out.append(None)
        else:
            out.append(result.to_dict())
    return out


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


# ------------------------------------------------------------------------------------------------ driver side
def build_tasks(entries, *, test, unit, n_seed_trials, store_root, device, model_dir: Path, saved=None,
                cache_dir=None) -> list:
    """Tasks for the cells ``entries`` ((cell, victim, substitutes) not yet stored), with their models saved in
    ``model_dir`` (``saved``: victim id -> (bundle, hash) of the models already there); ``cache_dir``: the victim
    cache's folder, where workers read and write black-box substitutes (None: not cached)."""
    from ..models import save_bundle
    from ..models.decoder import EEGDecoder
    from .results import model_hash

    saved = {} if saved is None else saved

    def bundle(v) -> str:
        if v.victim_id not in saved:
            model = v.model
            if not isinstance(model, EEGDecoder):
                raise ConfigError(f"engine process/ray hands victims to workers as bundles, and {v.name!r} is a "
                                  f"{type(model).__name__} (a loaded ONNX or TorchScript model?), not an eegrobust "
                                  "model; run it with --engine serial.")
            path = save_bundle(model, model_dir / v.victim_id)
            saved[v.victim_id] = (str(path), model_hash(model))
        return saved[v.victim_id]

    groups: dict = {}
    for cell, victim, subs in entries:
        gray = cell.attack.threat_model == "gray_box"
        key = ("gray", cell.attack_seed, cell.attack.substitute) if gray else ("cell", cell.digest)
        task = groups.setdefault(key, {"cells": [], "substitutes": {}})
        path, victim_hash = bundle(victim)
        task["cells"].append((cell, path, victim_hash))
        if gray:
            sub = subs[cell.attack.substitute]
            task["substitutes"][cell.attack.substitute] = bundle(sub)[0]
    common = {"test": test, "unit": unit, "n_seed_trials": n_seed_trials, "store": store_root, "device": device,
              "threads": 1, "cache_dir": cache_dir}
    return [{**common, **g} for g in groups.values()]


def run_tasks(engine: Engine, tasks: list, *, on_done=None) -> list:
    """Run ``tasks`` on a parallel ``engine``; return each task's list of results (in task order). The serial
    engine never comes here: `harness.suite.execute_fold` runs its cells in this process."""
    if engine.name == "process":
        return _run_process(engine, tasks, on_done)
    if engine.name == "ray":
        return _run_ray(engine, tasks, on_done)
    raise ValueError(f"run_tasks runs the process and ray engines, not {engine.name!r}.")


def _run_process(engine: Engine, tasks, on_done) -> list:
    import multiprocessing as mp
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    results: list = [None] * len(tasks)
    # spawn: a fresh interpreter per worker (torch and fork do not mix); one torch thread each
    with ProcessPoolExecutor(max_workers=min(engine.n_jobs, len(tasks)) or 1, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(1,)) as pool:
        futures = {pool.submit(run_task, t): i for i, t in enumerate(tasks)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                err = f.exception()
                if err is not None:
                    for p in pending:
                        p.cancel()
                    raise err
                results[futures[f]] = f.result()
                if on_done:
                    on_done(tasks[futures[f]])
    return results


def _run_ray(engine: Engine, tasks, on_done) -> list:
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    started = False
    if not ray.is_initialized():
        if engine.ray_address is not None:  # `preflight` has asked the address for a gRPC hello
            try:
                ray.init(address=engine.ray_address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as err:  # e.g. Ray versions differ
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                auth = ("" if os.environ.get("RAY_AUTH_MODE") == "token" else
                        "; a head with token authentication (Ray >= 2.59 turns it on by default) also needs "
                        "RAY_AUTH_MODE=token here, with its token in RAY_AUTH_TOKEN or ~/.ray/auth_token")
                raise ConfigError(f"--ray-address {engine.ray_address!r}: Ray could not join the cluster ({first}); "
                                  f"check that the head runs Ray {ray.__version__} and Python "
                                  f"{sys.version_info.major}.{sys.version_info.minor} like this machine{auth}; or "
                                  f"leave --ray-address out to run a local Ray instance.") from None
        else:
            # workers inherit this environment (a runtime_env would make Ray start a second, dedicated pool)
            os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
            ray.init(num_cpus=engine.n_jobs, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        started = True
    try:
        gpus = engine.gpu_fraction if any(t["device"] == "cuda" for t in tasks) else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_task)
        refs = [remote.remote(t) for t in tasks]
        index = {r: i for i, r in enumerate(refs)}
        results: list = [None] * len(tasks)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = index[done[0]]
            try:
                results[i] = ray.get(done[0])
            except ray.exceptions.RayTaskError as err:
                for r in pending:
                    ray.cancel(r)
                cause = err.as_instanceof_cause()
                raise (cause if isinstance(cause, Exception) else err) from None
            if on_done:
                on_done(tasks[i])
        return results
    finally:
        if started:
            ray.shutdown()
