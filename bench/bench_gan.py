"""EEG-GAN on bundled SCP1: training time, quality gates, TSTR vs TRTR, and the augmentation comparison.

Part 1, per seed: ``harness.gan.train_gan_with_gates`` with the default ``GANConfig`` on the official training split
(the GAN fits 80 % of it; the gates use the other 20 %, the trials EEGNet & co. later validate on). Records wall and
CPU time, the load average (the machine is shared, so wall time is noisy), every gate and its value, and
train-on-synthetic / train-on-real accuracy on the held-out trials.

Part 2 (unless ``--skip-comparison``): ``harness.gan.run_gan_comparison`` with the part-1 generators: per model, no
augmentation vs EEG-GAN vs braindecode FTSurrogate + SmoothTimeMask, then white-box FGSM and L-inf PGD plus the
noise control on the official test split; clean accuracy and worst-case robust accuracy per epsilon, mean and
spread over the seeds.

Writes bench/gan.json.  Usage: python bench/bench_gan.py [--seeds 0,1,2] [--models eegnet] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow `python bench/bench_gan.py` from a checkout
    sys.path.insert(0, str(ROOT))

from eegrobust.data import epochs_to_data, load_bundled  # noqa: E402
from eegrobust.harness.config import SuiteConfig  # noqa: E402
from eegrobust.harness.gan import COMPARISON, run_gan_comparison, train_gan_with_gates  # noqa: E402
from eegrobust.harness.report import comparison_table  # noqa: E402
from eegrobust.models.gan import GANConfig  # noqa: E402


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_gans(train, seeds, config: GANConfig) -> tuple[dict, dict]:
    runs, gans = {}, {}
    for seed in seeds:
        load_before, wall0, cpu0 = os.getloadavg()[0], time.perf_counter(), _cpu_s()
        gan, report = train_gan_with_gates(train, config, seed=seed)
        wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
        gans[seed] = (gan, report)
        runs[str(seed)] = {
            "fit_s": round(gan.fit_seconds_, 1), "fit_and_gates_wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_avg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "passed": report["passed"],
            "gates": {g["name"]: {"value": round(g["value"], 4), "op": g["op"], "threshold": round(g["threshold"], 4),
                                  "passed": g["passed"]} for g in report["gates"]},
            "band_power_diff_db": {"bands": report["band_power_db"]["bands"],
                                   "mean_over_channels": np.round(np.mean(report["band_power_db"]["diff_db"], 0),
                                                                  2).tolist(),
                                   "worst": report["band_power_db"]["worst"]},
            "class_pattern": {k: report["class_pattern"][k] for k in ("family", "corr", "corr_by_family",
                                                                       "real_reliability")},
            "tstr_acc": report["tstr"]["tstr_acc"], "trtr_acc": report["tstr"]["trtr_acc"],
            "chance_bound": report["tstr"]["chance_bound"], "n_fit": report["n_fit"], "n_holdout": report["n_holdout"],
        }
        print(f"seed {seed}: GAN {gan.fit_seconds_:.0f} s (cpu {cpu:.0f} s), gates "
              f"{'passed' if report['passed'] else 'FAILED'}: "
              + ", ".join(f"{g['name']}={g['value']:.3f}{'' if g['passed'] else '!'}" for g in report["gates"])
              + f"; TRTR {report['tstr']['trtr_acc']:.3f}", flush=True)
    return runs, gans


def summarize(runs: dict) -> dict:
    names = list(next(iter(runs.values()))["gates"])
    out = {"all_passed": all(r["passed"] for r in runs.values()),
           "fit_s_max": max(r["fit_s"] for r in runs.values())}
    for name in names + ["tstr_acc", "trtr_acc"]:
        vals = [r["gates"][name]["value"] if name in r["gates"] else r[name] for r in runs.values()]
        out[name] = {"mean": round(float(np.mean(vals)), 4), "std": round(float(np.std(vals)), 4),
                     "min": round(float(np.min(vals)), 4), "max": round(float(np.max(vals)), 4)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--models", default="eegnet", help="comma-separated victims of the comparison")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on the shared "
                                                               "2-core machine)")
    parser.add_argument("--gan-ratio", type=float, default=1.0)
    parser.add_argument("--skip-comparison", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).with_name("gan.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    config = GANConfig(show_progress=False)
    report = {"dataset": "scp1", "n_train": train.n_trials, "n_test": test.n_trials, "seeds": list(seeds),
              "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "gan_config": config.to_dict(), "budget_s": 300}
    runs, gans = train_gans(train, seeds, config)
    report["gan_runs"] = runs
    report["gan_summary"] = summarize(runs)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    if not args.skip_comparison:
        suite = SuiteConfig.make("standard", models=tuple(args.models.split(",")), **COMPARISON)
        t0 = time.perf_counter()
        result = run_gan_comparison(suite, train, test, seeds=seeds, gan_ratio=args.gan_ratio, progress=False,
                                    pretrained=gans)
        header, rows = comparison_table(result.rows)
        report["comparison"] = {
            "suite": {k: v for k, v in suite.to_dict().items() if k in ("models", *COMPARISON)},
            "gan_ratio": args.gan_ratio, "wall_s": round(time.perf_counter() - t0, 1),
            "clean": result.provenance["comparison"]["clean"],
            "table_header": header, "table": rows,
            "refused": {s: i["refused"] for s, i in result.provenance["gan"]["seeds"].items() if i["refused"]},
        }
        print("\n".join(" | ".join(map(str, r)) for r in [header, *rows]))
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
