"""Studies on real multi-subject data: wall and CPU time, per-subject and aggregate tables, the worst-case invariant.

Runs ``eegrobust run --dataset scp --preset quick`` (bundled BCI Competition II Ia and Ib as two subjects) with the
cross-subject protocol (EEGNet, Deep4Net and ShallowFBCSPNet) and the within-subject protocol (``--within-models``,
default EEGNet, to keep the run within minutes on 2 cores) in a subprocess each, then reruns each with ``--resume``
(the store answers every cell: nothing is trained or attacked). Records wall time and CPU time (user + system of the
child), the per-subject worst case per norm and the across-subject summary, and checks on every unit that the
per-trial white-box worst case is never above the minimum of the per-attack accuracies. Writes bench/study.json.

    python bench/bench_study.py [--protocols cross-subject,within-subject] [--folds 3]
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

import pandas as pd


def _run(argv, env) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "eegrobust.harness", "run", *argv], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"eegrobust run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "stdout_tail": proc.stdout[-600:]}


def _tables(out: Path) -> dict:
    subjects = pd.read_csv(out / "subjects.csv")
    summary = pd.read_csv(out / "summary.csv")
    white = subjects[subjects["threat_model"] == "white_box"]
    violations = 0
    for _, g in white.groupby(["model", "subject", "fold", "train_seed", "norm", "epsilon"]):
        worst, attacks = g[g["kind"] == "worst_case"], g[g["kind"] == "attack"]
        if len(worst) and worst["adv_rca"].iloc[0] > attacks["adv_rca"].min() + 1e-12:
            violations += 1
    per_subject = (white[white["kind"] == "worst_case"].groupby(["model", "norm", "epsilon", "subject"])["adv_rca"]
                   .mean().round(4))
    clean = (subjects[subjects["kind"] == "attack"].groupby(["model", "subject"])["clean_rca"].mean().round(4))
    agg = summary[summary["kind"] == "worst_case"][["model", "norm", "epsilon", "mean", "sd", "ci_low", "ci_high",
                                                   "n", "n_note"]]
    return {"clean_rca_per_subject": {f"{m}/{s}": v for (m, s), v in clean.items()},
            "worst_case_per_subject": {f"{m}/{n}/eps{e:g}/{s}": v for (m, n, e, s), v in per_subject.items()},
            "worst_case_across_subjects": json.loads(agg.round(4).to_json(orient="records")),
            "worst_case_invariant_violations": violations}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocols", default="cross-subject,within-subject")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--within-models", default="eegnet")
    parser.add_argument("--out", default=str(Path(__file__).with_name("study.json")))
    args = parser.parse_args(argv)
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    report = {"dataset": "scp (bundled BCI Comp II Ia = subject scp1, Ib = subject scp2, first 3.5 s)",
              "preset": "quick", "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
              "runs": previous.get("runs", {})}  # protocols not run this time keep their last numbers
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "EEGROBUST_CACHE": str(Path(tmp, "cache")), "GIT_PYTHON_REFRESH": "quiet"}
        for protocol in args.protocols.split(","):
            out = Path(tmp, protocol)
            base = ["--dataset", "scp", "--protocol", protocol, "--folds", str(args.folds), "--preset", "quick",
                    "--quiet"]
            if protocol == "within-subject":
                base += ["--models", args.within_models]
            first = _run([*base, "--out", str(out)], env)
            again = _run([*base, "--out", str(out), "--resume"], env)
            study = json.loads((out / "study.json").read_text())
            report["runs"][protocol] = {"args": base, "first_run": first, "resume_of_finished_study": again,
                                        "n_cells": len(study["cells"]),
                                        "folds": [f["fold"] for f in study["folds"]], **_tables(out)}
            print(protocol, json.dumps({k: v for k, v in report["runs"][protocol].items()
                                        if k not in ("worst_case_per_subject",)})[:1500])
    report["machine"]["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
