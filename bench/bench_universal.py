"""Universal and band-limited perturbations on bundled SCP1, beside the suite's L-inf PGD.

For each victim (trained with default settings on the official training split), the official test split is cut
as the cell runner cuts it for black-box attacks (`data.splits.disjoint_indices(test, 150, random_state=0)`): 150
held-out trials are the attacker's data, the rest are evaluated. On the evaluation trials the victim gets right:
- ``uap``: one perturbation per epsilon fitted on the 150 held-out trials (labelled by the victim), added to all;
- ``linf_pgd`` (40 steps) and ``band_pgd`` (40 steps) in 1-40 Hz and 0.1-4 Hz, per trial.
Robust accuracy is the fraction of *all* evaluation trials still correct. SNR is pooled over the attacked trials:
``10 log10(sum x_demeaned^2 / sum delta^2)`` (x demeaned per trial and channel). Times are per call (all budgets)
and per attacked trial, wall and CPU (``time.process_time``, all threads of this process).
Victims come from the harness's victim cache (trained on a miss, ~10 min for the three on 2 free cores; --no-cache
retrains). Writes bench/universal.json.  Usage: python bench/bench_universal.py [--models eegnet deep4 shallow]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from eegrobust.attacks import channel_scale, make_attack, pooled_snr_db
from eegrobust.attacks.bandlimit import out_of_band_fraction
from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.data.splits import disjoint_indices
from eegrobust.harness.cache import VictimCache
from eegrobust.harness.config import SuiteConfig
from eegrobust.models import predict

EPSILONS = (0.05, 0.1, 0.3)
N_FIT = 150


def attacks(fit_data):
    return {"uap": make_attack("uap", fit_data=fit_data),
            "linf_pgd": make_attack("linf_pgd", steps=40),
            "band_pgd_1-40Hz": make_attack("band_pgd", band=(1.0, 40.0), steps=40),
            "band_pgd_0.1-4Hz": make_attack("band_pgd", band=(0.1, 4.0), steps=40)}


def evaluate(name, attack, model, ev, correct, scale):
    Xc, yc = ev.X[correct], ev.y[correct]
    t, c = time.perf_counter(), time.process_time()
    outs = attack(model, Xc, yc, epsilons=EPSILONS, scale=scale, sfreq=ev.sfreq, random_state=0)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    entry = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "ms_per_trial_wall": round(wall / len(Xc) * 1e3, 2),
             "ms_per_trial_cpu": round(cpu / len(Xc) * 1e3, 2), "eps": {}}
    for eps, out in zip(EPSILONS, outs, strict=True):
        pred = predict(model, out.X_adv)
        delta = out.X_adv.astype(np.float64) - Xc
        cell = {"robust_acc": round(float((pred == yc).sum() / len(ev.y)), 4),
                "success_rate": round(float(np.mean(pred != yc)), 4),
                "snr_db": round(pooled_snr_db(Xc, delta), 2),
                "linf_rel": round(float(np.abs(delta / scale[None, :, None]).max()), 4)}
        if name == "uap":
            cell["fit_fooling_rate"] = round(out.info["fit_fooling_rate"], 4)
            d = delta / scale[None, :, None]
            cell["max_delta_spread"] = float(np.abs(d - d[:1]).max())  # one delta for all trials: ~1e-6
        if name.startswith("band_pgd"):
            changed = np.any(delta != 0, axis=(1, 2))
            band = tuple(out.info["band_hz"])
            cell["out_of_band_energy"] = (float(out_of_band_fraction(delta[changed], ev.sfreq, band))
                                          if changed.any() else 0.0)
        entry["eps"][str(eps)] = cell
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["eegnet", "deep4", "shallow"])
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads; use 1 when other jobs load the machine (2 spinning threads then cost "
                             "about 9x the CPU time, measured)")
    parser.add_argument("--no-cache", action="store_true", help="train the victims even if cached")
    parser.add_argument("--out", default=str(Path(__file__).with_name("universal.json")))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_all, c_all, load_start = time.perf_counter(), time.process_time(), round(os.getloadavg()[0], 2)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    fit_idx, eval_idx = disjoint_indices(test, N_FIT, random_state=0)
    fit_data, ev = test.subset(fit_idx), test.subset(eval_idx)
    scale = channel_scale(test.X)  # the whole test split's std, as the cell runner's FoldContext
    t0 = time.perf_counter()
    config = SuiteConfig(models=tuple(args.models))
    # train_victims(config, train) with the harness's victim cache: a rerun loads the same victims from disk
    cache = VictimCache(enabled=not args.no_cache)
    victims = {arch: cache.get(train, arch, config.train, seed=config.seeds[0])[0] for arch in config.models}
    report = {"dataset": "scp1", "epsilons": list(EPSILONS), "n_fit": len(fit_idx), "n_eval": len(eval_idx),
              "sfreq": ev.sfreq, "n_times": ev.n_times, "torch_threads": torch.get_num_threads(),
              "train_or_load_s": round(time.perf_counter() - t0, 1), "victims_trained": cache.n_trained,
              "models": {}}
    for arch, model in victims.items():
        model.eval().requires_grad_(False)
        correct = predict(model, ev.X) == ev.y
        entry = report["models"][arch] = {"clean_acc": round(float(correct.mean()), 4),
                                          "n_attacked": int(correct.sum()), "attacks": {}}
        for name, attack in attacks(fit_data).items():
            entry["attacks"][name] = evaluate(name, attack, model, ev, correct, scale)
            print(arch, name, json.dumps(entry["attacks"][name]), flush=True)
    report["load_average_1min"] = {"start": load_start, "end": round(os.getloadavg()[0], 2)}
    report["total_wall_s"] = round(time.perf_counter() - t_all, 1)
    report["total_cpu_s"] = round(time.process_time() - c_all, 1)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out} in {report['total_wall_s']} s")


if __name__ == "__main__":
    main()
