"""Time `eegrobust report` (every format: md, html, tex, csv, 12 figures as PNG and PDF) on a standard demo's results.

Renders ``tests/harness/data/scp1_standard_results.json.gz`` (a real `eegrobust demo` results file: 39 cells, 249
rows, per-trial outcomes) in a fresh interpreter, ``--rounds`` times, and records the fastest wall and CPU time and
whether torch was imported (a report never needs it). ``--ref GIT_REF`` also renders with the eegrobust of that
commit (a temporary git worktree put first on ``PYTHONPATH``), alternating with this checkout in the same run, and
records the speed-up over it. Writes bench/report.json.

    python bench/bench_report.py [--rounds 2] [--ref 9eff2a2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eegrobust.harness.results import cpu_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tests" / "harness" / "data" / "scp1_standard_results.json.gz"

CODE = """
import json, sys, time
t = time.perf_counter()
from eegrobust.harness.report import write_report
paths = write_report(sys.argv[1], sys.argv[2])
print(json.dumps({"in_process_s": time.perf_counter() - t, "torch_imported": "torch" in sys.modules,
                  "n_figures": len(list(paths["figures"].glob("*.png"))), "eegrobust": __import__("eegrobust").__file__}))
"""


def render_once(results: Path, pythonpath: str | None) -> dict:
    env = dict(os.environ, GIT_PYTHON_REFRESH="quiet")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CODE, str(results), out], capture_output=True, text=True,
                              env=env, cwd=out, check=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), **info}


def worktree(ref: str, where: Path) -> str:
    """A checkout of ``ref`` importable as ``eegrobust`` (a folder holding an ``eegrobust`` link to it)."""
    tree = where / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref], check=True,
                   capture_output=True)
    (where / "path").mkdir()
    (where / "path" / "eegrobust").symlink_to(tree)
    return str(where / "path")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ref", default=None, help="git ref of a baseline eegrobust to time in the same run")
    parser.add_argument("--out", default=str(Path(__file__).with_name("report.json")))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        results.write_bytes(gzip.decompress(RESULTS.read_bytes()))
        base_path = worktree(args.ref, Path(tmp)) if args.ref else None
        runs: dict = {"current": [], "baseline": []}
        try:
            for _ in range(args.rounds):  # alternating, so drift of the machine hits both alike
                runs["current"].append(render_once(results, None))
                if base_path:
                    runs["baseline"].append(render_once(results, base_path))
        finally:
            if base_path:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / "tree")],
                               check=False, capture_output=True)
    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items() if v}
    report = {"results": str(RESULTS.relative_to(ROOT)), "formats": "md, html, tex, csv (figures as PNG and PDF)",
              "rounds": args.rounds, "cpu_model": cpu_model(), "load_after": list(os.getloadavg()),
              "current": best["current"], "all_runs": runs}
    if "baseline" in best:
        report["baseline"] = {**best["baseline"], "ref": args.ref}
        report["speedup_wall"] = round(best["baseline"]["wall_s"] / best["current"]["wall_s"], 2)
        report["speedup_cpu"] = round(best["baseline"]["cpu_s"] / best["current"]["cpu_s"], 2)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "all_runs"}, indent=1))


if __name__ == "__main__":
    main()
