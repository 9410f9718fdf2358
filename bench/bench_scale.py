"""One 12-cell study on the serial, process and Ray engines: wall and CPU time, speed-up, identical rows, overhead.

The study: bundled SCP1, EEGNet, Deep4Net and ShallowFBCSPNet (victims from the victim cache, so nothing is trained
in the timed runs: run ``eegrobust demo`` or any bench once first), 120 test trials, FGSM and PGD-10 (white-box),
Square with 100 queries (black-box) and the noise control, at 0.05 / 0.1 / 0.3: 3 models x 4 attacks = 12 cells.
Each engine runs ``eegrobust run`` in a subprocess on a fresh folder (``--engine serial``; ``process --jobs 2``;
``ray --jobs 2``, a local Ray instance started and stopped by the run). The rows of every engine must equal the
serial rows apart from ``wall_s``. Per-cell overhead: 15 near-empty cells (FGSM, UFGSM, PGD-1, Square with 2 queries
and the noise control at one budget, each well under a second of work), wall time per cell, on each engine.

CPU time is user + system of the finished children (``RUSAGE_CHILDREN``): it includes the process pool's workers,
but not Ray's, whose raylet outlives the wait; Ray's CPU time is therefore a lower bound.

    python bench/bench_scale.py [--jobs 2] [--engines serial,process,ray]
    python bench/bench_scale.py --size standard        # -> bench/scale_standard.json

``--size standard``: the same 12 cells at the size of the demo's (every test trial, the full budget grid, PGD-20,
Square with 200 queries), where each cell is seconds to a minute of work, so the engines' start-up weighs less;
the overhead runs are left out there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eegrobust.harness.results import cpu_model

GRID = """
dataset = "scp1"
models = ["eegnet", "deep4", "shallow"]
threat = ["white_box", "black_box", "control"]
attacks = {attacks}
eps = {eps}
[suite]
{n_trials}pgd_steps = {steps}
max_queries = {queries}
"""


def run(config: Path, out: Path, engine: str, jobs: int) -> dict:
    argv = [sys.executable, "-m", "eegrobust.harness", "run", "--config", str(config), "--out", str(out),
            "--engine", engine, "--quiet", "--device", "cpu"]
    if engine != "serial":
        argv += ["--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "GIT_PYTHON_REFRESH": "quiet"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{engine}: eegrobust run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rows = json.loads((out / "results.json").read_text())["rows"]
    cells = json.loads((out / "study.json").read_text())["cells"]
    return {"wall_s": round(wall, 1), "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime
                                                        - before.ru_stime, 1),
            "n_cells": len(cells), "rows": [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--engines", default="serial,process,ray")
    parser.add_argument("--size", choices=("small", "standard"), default="small")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    standard = args.size == "standard"
    out = args.out or str(Path(__file__).with_name("scale_standard.json" if standard else "scale.json"))
    engines = args.engines.split(",")
    study = ("scp1, eegnet/deep4/shallow, all 293 test trials, fgsm + linf_pgd(20) + square(200) + noise, "
             "eps 0.01/0.03/0.05/0.1/0.2/0.3: 12 cells; victims from the cache" if standard else
             "scp1, eegnet/deep4/shallow, 120 test trials, fgsm + linf_pgd(10) + square(100) + noise, "
             "eps 0.05/0.1/0.3: 12 cells; victims from the cache")
    report = {"study": study, "jobs": args.jobs,
              "cores": os.cpu_count(), "cpu_model": cpu_model(), "load_before": list(os.getloadavg()),
              "engines": {}, "overhead": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        main_cfg, light_cfg = tmp / "grid.toml", tmp / "light.toml"
        if standard:
            main_cfg.write_text(GRID.format(attacks='["fgsm", "linf_pgd", "square"]',
                                            eps="[0.01, 0.03, 0.05, 0.1, 0.2, 0.3]", steps=20, queries=200,
                                            n_trials=""))
        else:
            main_cfg.write_text(GRID.format(attacks='["fgsm", "linf_pgd", "square"]', eps="[0.05, 0.1, 0.3]",
                                            steps=10, queries=100, n_trials="n_trials = 120\n"))
        light_cfg.write_text(GRID.format(attacks='["fgsm", "ufgsm", "linf_pgd", "square"]', eps="[0.1]", steps=1,
                                         queries=2, n_trials="n_trials = 120\n"))
        run(main_cfg, tmp / "warm", "serial", 1)  # loads (or trains) the victims into the cache once
        serial_rows = None
        for engine in engines:
            r = run(main_cfg, tmp / f"main-{engine}", engine, args.jobs)
            rows = r.pop("rows")
            serial_rows = rows if engine == "serial" else serial_rows
            r["rows_identical_to_serial"] = None if serial_rows is None else rows == serial_rows
            report["engines"][engine] = r
            print(engine, json.dumps(r), flush=True)
        for engine in [] if standard else engines:
            light = run(light_cfg, tmp / f"light-{engine}", engine, args.jobs)
            light.pop("rows")
            light["wall_s_per_cell"] = round(light["wall_s"] / light["n_cells"], 2)
            report["overhead"][engine] = light
            print("overhead", engine, json.dumps(light), flush=True)
    base = report["engines"].get("serial", {}).get("wall_s")
    for engine, r in report["engines"].items():
        r["speedup_over_serial"] = round(base / r["wall_s"], 2) if base else None
    if "serial" in report["overhead"]:
        s = report["overhead"]["serial"]["wall_s"]
        for engine, r in report["overhead"].items():
            r["extra_wall_s_over_serial"] = round(r["wall_s"] - s, 1)
    report["load_after"] = list(os.getloadavg())
    report["ok"] = all(r["rows_identical_to_serial"] is not False for r in report["engines"].values()) and all(
        r["speedup_over_serial"] >= 1.7 for e, r in report["engines"].items() if e != "serial")
    Path(out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
