"""FMN (L-inf Fast Minimum-Norm) against fixed-budget L-inf PGD on bundled SCP1.

For each victim (EEGNet, Deep4Net, ShallowFBCSPNet trained with default settings on the official training split,
once, seed 0 as `bench_attacks.py`), on the clean-correct trials of the official test split:
- FMN's accuracy-vs-epsilon curve from one run (robust accuracy: fraction of all test trials still correct);
- fixed-budget LinfPGD (40 steps, step 2.5*eps/steps, random start, 1 restart) at the same epsilons, nested;
- the per-epsilon gap FMN - PGD (positive: FMN weaker), FMN's median minimal norm and fooled fraction;
- wall and CPU (time.process_time) seconds, and wall ms per trial;
- optionally (``--sweep``, EEGNet only) FMN's curve at other step counts, to see where it converges.
Writes bench/fmn.json.  Usage: python bench/bench_fmn.py [--steps 100] [--sweep 10,25] [--cache DIR] [--threads 2]

Timing: wall seconds depend on what else runs on the machine (the 1-minute load average is recorded before and
after); CPU seconds (`time.process_time`, all threads) much less so. On a shared CPU, 2 torch threads spin against
other processes and ran several times slower than 1 (measured), hence ``--threads``. ``--cache DIR`` trains the
victims once (defaults, seed 0) into a victim cache and reuses them on later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from eegrobust.attacks import channel_scale, make_attack
from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.harness.cache import VictimCache
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.suite import train_victims
from eegrobust.models import predict

EPSILONS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3)


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def curve(model, test, correct, outs):
    """Robust accuracy over all test trials at each output's epsilon (attacked: the clean-correct ones)."""
    res = {}
    for out in outs:
        X_adv = test.X.copy()
        X_adv[correct] = out.X_adv
        res[str(out.epsilon)] = round(float(np.mean(predict(model, X_adv) == test.y)), 4)
    return res


def run_fmn(model, test, correct, scale, steps, **params):
    Xc, yc = test.X[correct], test.y[correct]
    attack = make_attack("fmn", steps=steps, **params)
    outs, wall, cpu = timed(attack, model, Xc, yc, epsilons=EPSILONS, scale=scale)
    norms = outs[0].min_norm
    return {"params": attack.get_params(), "curve": curve(model, test, correct, outs),
            "median_min_norm": round(float(np.median(norms)), 5), "fooled": round(float(np.isfinite(norms).mean()), 4),
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "ms_per_trial": round(wall / len(Xc) * 1e3, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100, help="FMN steps")
    parser.add_argument("--pgd-steps", type=int, default=40)
    parser.add_argument("--sweep", default="", help="comma-separated extra FMN step counts, EEGNet only")
    parser.add_argument("--cache", default=None, help="victim cache directory (default: train, write nothing)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine: see notes)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("fmn.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    config = SuiteConfig()
    t0 = time.perf_counter()
    if args.cache:
        cache = VictimCache(args.cache)
        victims = {a: cache.get(train, a, config.train, seed=config.seeds[0])[0] for a in config.models}
    else:
        victims = train_victims(config, train, progress=False)
    report = {"dataset": "scp1", "epsilons": list(EPSILONS), "unit": "rel", "fmn_steps": args.steps,
              "pgd": {"steps": args.pgd_steps, "restarts": 1}, "train_s": round(time.perf_counter() - t0, 1),
              "cached_victims": bool(args.cache), "torch_threads": torch.get_num_threads(), "models": {}}
    scale = channel_scale(test.X)
    for name, model in victims.items():
        model.eval().requires_grad_(False)
        clean = predict(model, test.X)
        correct = clean == test.y
        Xc, yc = test.X[correct], test.y[correct]
        entry = {"clean_acc": round(float(correct.mean()), 4), "n_attacked": int(correct.sum())}
        entry["fmn"] = run_fmn(model, test, correct, scale, args.steps)
        pgd = make_attack("linf_pgd", steps=args.pgd_steps, restarts=1)
        outs, wall, cpu = timed(pgd, model, Xc, yc, epsilons=EPSILONS, scale=scale)
        entry["pgd"] = {"curve": curve(model, test, correct, outs), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                        "ms_per_trial": round(wall / len(Xc) * 1e3, 2)}
        gap = {e: round(entry["fmn"]["curve"][e] - entry["pgd"]["curve"][e], 4) for e in entry["pgd"]["curve"]}
        entry["gap_fmn_minus_pgd"] = gap
        entry["max_abs_gap"] = max(abs(v) for v in gap.values())
        if args.sweep and name == "eegnet":
            entry["fmn_steps_sweep"] = {s: run_fmn(model, test, correct, scale, int(s))
                                        for s in args.sweep.split(",")}
        report["models"][name] = entry
        print(name, json.dumps(entry), flush=True)
    report["total_s"] = round(time.perf_counter() - t0, 1)
    report["load_avg_1min_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} ({report['total_s']} s)")


if __name__ == "__main__":
    main()
