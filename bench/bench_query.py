"""Query attacks on bundled SCP1: robust accuracy against queries per trial, for SimBA, Square and RayS.

EEGNet is trained with default settings (`train_victims(SuiteConfig(models=("eegnet",)))`) on the official
training split; the attacks run on the clean-correct trials of a stratified random subset of the official test
split (``--n-trials``; the budget unit, ``channel_scale``, comes from the whole test split). Robust accuracy is
the fraction of all subset trials still correct after the attack.

One run per attack and epsilon with ``max_queries`` (5000) per trial; the curve at Q queries counts a trial as
fooled if the attack fooled it within its first Q queries (``AttackOutput.n_queries``, the queries up to and
including the first query whose label differed from the clean one). SimBA and RayS search each trial on its
own (seeded per trial, the same order whatever the budget), so their curve at Q is exactly a run with
``max_queries=Q``; Square's window schedule is tied to ``max_queries``, so its curve is that of a 5000-query run
stopped early. RayS is minimal-norm: one run serves every epsilon. White-box L-inf PGD (40 steps) on the same
trials is the reference.

Writes bench/query.json. Usage: python bench/bench_query.py [--n-trials 60] [--max-queries 5000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from eegrobust.attacks import LinfPGD, RayS, SimBA, SquareAttack, channel_scale
from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.suite import train_victims
from eegrobust.models import predict

QUERY_GRID = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
EPSILONS = (0.05, 0.1, 0.2, 0.3)


class Clock:
    """Wall time and this process's CPU time (all threads) of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def stratified_subset(y, n, seed=0):
    """Indices of ``n`` trials (all if fewer), drawn per class in proportion to the class sizes."""
    if n >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(y == c))[:round(n * np.mean(y == c))] for c in np.unique(y)]
    return np.sort(np.concatenate(idx))


def curve(model, out, y, n_total, n_clean_correct, grid):
    """Robust accuracy over all ``n_total`` trials at each query budget of ``grid`` (attacked: the correct ones)."""
    fooled = predict(model, out.X_adv) != y
    q = out.n_queries
    return {str(Q): round((n_clean_correct - int(np.sum(fooled & (q <= Q)))) / n_total, 4) for Q in grid}


def summary(model, out, y, clock, n_attacked):
    fooled = predict(model, out.X_adv) != y
    return {"queries_to_fool_median": float(np.median(out.n_queries[fooled])) if fooled.any() else None,
            "queries_mean": round(float(np.mean(out.n_queries)), 1),
            "wall_s": round(clock.wall, 1), "cpu_s": round(clock.cpu, 1),
            "wall_ms_per_trial": round(clock.wall / n_attacked * 1e3, 1),
            "cpu_ms_per_trial": round(clock.cpu / n_attacked * 1e3, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-trials", type=int, default=60)
    parser.add_argument("--max-queries", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).with_name("query.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = tuple(q for q in QUERY_GRID if q <= args.max_queries)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    with Clock() as c_train:
        model = train_victims(SuiteConfig(models=("eegnet",)), train, progress=False)["eegnet"]
    model.eval().requires_grad_(False)
    scale = channel_scale(test.X)  # the whole test split's budget unit, as the harness uses
    sub = stratified_subset(test.y, args.n_trials)
    X, y = test.X[sub], test.y[sub]
    correct = predict(model, X) == y
    Xc, yc, n, n_ok = X[correct], y[correct], len(y), int(correct.sum())
    report = {
        "dataset": "scp1", "victim": "eegnet (default SuiteConfig training, seed 0)",
        "trials": {"n_test": len(test.y), "n_subset": n, "n_attacked": n_ok,
                   "subset": f"stratified random subset (seed 0) of {n} of the {len(test.y)} official test trials, "
                             "to keep the bench within ~15 minutes on 2 cores" if n < len(test.y) else "all"},
        "clean_accuracy_subset": round(n_ok / n, 4), "clean_accuracy_test": round(float(np.mean(
            predict(model, test.X) == test.y)), 4),
        "unit": "rel (channel std of the demeaned test trials)", "epsilons": list(EPSILONS),
        "max_queries": args.max_queries, "query_grid": list(grid), "torch_threads": torch.get_num_threads(),
        "load_avg_1min_start": round(os.getloadavg()[0], 2),
        "train": {"wall_s": round(c_train.wall, 1), "cpu_s": round(c_train.cpu, 1)},
        "white_box_pgd": {}, "attacks": {},
    }
    with Clock() as c:
        outs = LinfPGD(steps=40)(model, Xc, yc, epsilons=EPSILONS, scale=scale)
    report["white_box_pgd"] = {str(e): round((n_ok - int(np.sum(predict(model, o.X_adv) != yc))) / n, 4)
                               for e, o in zip(EPSILONS, outs)}
    report["white_box_pgd"]["cpu_s"] = round(c.cpu, 1)
    print("pgd", report["white_box_pgd"], flush=True)
    attacks = {"simba": SimBA(max_queries=args.max_queries), "square": SquareAttack(max_queries=args.max_queries),
               "rays": RayS(max_queries=args.max_queries)}
    for name, attack in attacks.items():
        entry = report["attacks"][name] = {"params": attack.get_params(), "threat": (
            "decision-based (labels)" if name == "rays" else "score-based (probabilities)"), "by_epsilon": {}}
        if attack.minimal:  # one run, every epsilon
            with Clock() as c:
                outs = attack(model, Xc, yc, epsilons=EPSILONS, scale=scale, random_state=0)
            pairs = [(e, o, c) for e, o in zip(EPSILONS, outs)]
            entry["run"] = {"wall_s": round(c.wall, 1), "cpu_s": round(c.cpu, 1)}
        else:
            pairs = []
            for e in EPSILONS:
                with Clock() as c:
                    (o,) = attack(model, Xc, yc, epsilons=(e,), scale=scale, random_state=0)
                pairs.append((e, o, c))
        for e, o, c in pairs:
            entry["by_epsilon"][str(e)] = {"robust_accuracy_vs_queries": curve(model, o, yc, n, n_ok, grid),
                                           **summary(model, o, yc, c, n_ok)}
            print(name, e, json.dumps(entry["by_epsilon"][str(e)]), flush=True)
    score = {e: min(report["attacks"][a]["by_epsilon"][str(e)]["robust_accuracy_vs_queries"].get("1000", 1.0)
                    for a in ("simba", "square")) for e in EPSILONS}
    report["target"] = {
        "rule": "best score-based attack with <= 1000 queries per trial must leave <= 0.40 robust accuracy at "
                "epsilon 0.1",
        "best_score_based_at_1000": {str(e): v for e, v in score.items()},
        "white_box_pgd": {str(e): report["white_box_pgd"][str(e)] for e in EPSILONS},
        "met_at": {str(e): v <= 0.40 for e, v in score.items()},
        "scale_uV_mean": round(float(scale.mean()), 2),
        "std_with_offsets_uV_mean": round(float(test.X.std(axis=(0, 2)).mean()), 2),
        "note": "channel_scale removes each trial's mean (attacks/budget.py), so on SCP1 the unit is the "
                "scale_uV_mean above instead of the std with offsets (the unit when the 0.40 target was set, with "
                "white-box PGD at 0.12 at epsilon 0.1): the old epsilon 0.1 is about 0.2 now. Compare the "
                "black-box numbers with white_box_pgd at the same epsilon.",
    }
    report["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
