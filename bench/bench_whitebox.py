"""White-box strength against an independent APGD, APGD's cost, and what the reported SNR means.

On bundled SCP1, for EEGNet, Deep4Net and ShallowFBCSPNet (default training, seed 0, victims from the victim
cache), on the clean-correct trials of the official test split:
- per-trial worst case over the suite's L-inf white-box attacks (FGSM, UFGSM, PGD-20, APGD-CE) against an independent APGD-CE (torchattacks 3.5.1, 100 steps, 1 restart, rho 0.75, run in
  [0, 1] unit space), robust accuracy over all test trials at every epsilon; the suite must be at or below it
  within 0.01;
- the AutoAttack-style ensemble ("standard": APGD-CE, APGD-T/margin, FMN, Square; Square with 1000 queries here,
  not 5000, to fit a 2-core CPU) on EEGNet;
- cost per trial per step of the suite's APGD-CE and of a hand-written PGD loop (torch.autograd.grad), timed
  alternately at a budget where no trial flips (so neither stops early): ratio <= 1.10;
- FGSM's reported SNR (pooled over the attacked trials, against the demeaned signal) against -20 log10(epsilon) on
  every bundled dataset and on SCP1 with 4200 uV per-trial offsets added (raw Emotiv-like epochs).
Writes bench/whitebox.json.  Usage: python bench/bench_whitebox.py [--models eegnet,deep4,shallow]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from eegrobust.attacks import BudgetSpace, channel_scale, make_attack
from eegrobust.attacks.base import eval_mode
from eegrobust.data import epochs_to_data, load_bundled
from eegrobust.harness.cache import VictimCache
from eegrobust.harness.config import PRESETS, SuiteConfig
from eegrobust.harness.metrics import perturbation_stats
from eegrobust.models import predict

#: the L-inf white-box attacks of the "standard" preset of version 0.3.0 (which had APGD-CE), as measured
LINF_WHITE = ["fgsm", "ufgsm", "linf_pgd", "apgd_ce"]


def robust_flags(model, X, y, X_adv):
    return predict(model, X_adv) == y


def reference_apgd(model, X, y, scale, eps, steps=100, seed=0):
    """torchattacks' APGD-CE in unit space: budget space mapped onto [0, 1]."""
    import torchattacks

    S = X / scale[None, :, None]
    low, high = float(S.min()) - 1 - 2 * eps, float(S.max()) + 1 + 2 * eps
    span = high - low

    class Unit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = BudgetSpace(model, scale)

        def forward(self, u):  # torchattacks wants images (n, 1, C, T); it also squeezes a batch of one
            return self.m(u.reshape(-1, *X.shape[1:]) * span + low)

    unit = Unit().eval()
    atk = torchattacks.APGD(unit, norm="Linf", eps=eps / span, steps=steps, n_restarts=1, loss="ce", rho=0.75,
                            seed=seed)
    U = torch.from_numpy(((S - low) / span).astype(np.float32))[:, None]
    U_adv = atk(U, torch.from_numpy(y)).reshape(S.shape)
    return ((U_adv.detach().numpy() * span + low) * scale[None, :, None]).astype(np.float32)


def hand_pgd(model, X, y, scale, eps, steps):
    x, yt = torch.from_numpy(X), torch.from_numpy(y)
    s = torch.as_tensor(scale, dtype=torch.float32)[None, :, None]
    d = torch.zeros_like(x)
    for _ in range(steps):
        d.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(x + d * s), yt)
        (g,) = torch.autograd.grad(loss, d)
        d = (d.detach() + eps / 4 * g.sign()).clamp(-eps, eps)
    return d


def strength(name, model, test, scale, epsilons, parts=("suite", "reference"), entry=None):
    clean = predict(model, test.X)
    correct = clean == test.y
    Xc, yc = test.X[correct], test.y[correct]
    entry = entry or {"clean_rca": float(correct.mean()), "n_trials": int(test.n_trials), "attacks": {}, "wall_s": {},
                      "cpu_s": {}}
    robust = {}
    for attack in LINF_WHITE if "suite" in parts else ():
        params = {"steps": PRESETS["standard"].pgd_steps} if attack == "linf_pgd" else {}
        w, c = time.perf_counter(), time.process_time()
        outs = make_attack(attack, **params)(model, Xc, yc, epsilons=epsilons, scale=scale, random_state=0)
        entry["wall_s"][attack], entry["cpu_s"][attack] = (round(time.perf_counter() - w, 1),
                                                           round(time.process_time() - c, 1))
        robust[attack] = [robust_flags(model, Xc, yc, o.X_adv) for o in outs]
        entry["attacks"][attack] = [round(float(r.sum()) / test.n_trials, 4) for r in robust[attack]]
    if "suite" in parts:
        worst = [np.logical_and.reduce([robust[a][i] for a in robust]) for i in range(len(epsilons))]
        entry["suite_worst"] = [round(float(r.sum()) / test.n_trials, 4) for r in worst]
        print(name, "suite", json.dumps(entry), flush=True)
    if "reference" not in parts:
        return entry
    w, c = time.perf_counter(), time.process_time()
    ref = [robust_flags(model, Xc, yc, reference_apgd(model, Xc, yc, scale, e)) if e > 0 else np.ones(len(yc), bool)
           for e in epsilons]
    entry["wall_s"]["reference_apgd"], entry["cpu_s"]["reference_apgd"] = (round(time.perf_counter() - w, 1),
                                                                            round(time.process_time() - c, 1))
    entry["reference_apgd_ce"] = [round(float(r.sum()) / test.n_trials, 4) for r in ref]
    entry["suite_minus_reference"] = [round(a - b, 4) for a, b in zip(entry["suite_worst"], entry["reference_apgd_ce"])]
    if "suite" in parts:
        entry["trials_robust_to_suite_not_reference"] = [int((w_ & ~r).sum()) for w_, r in zip(worst, ref)]
    entry["ok"] = bool(max(entry["suite_minus_reference"]) <= 0.01)
    print(name, json.dumps(entry), flush=True)
    return entry


def autoattack_entry(model, test, scale, epsilons):
    correct = predict(model, test.X) == test.y
    Xc, yc = test.X[correct], test.y[correct]
    w, c = time.perf_counter(), time.process_time()
    outs = make_attack("autoattack", square_queries=1000)(model, Xc, yc, epsilons=epsilons, scale=scale,
                                                          random_state=0)
    return {"robust_rca": [round(float(robust_flags(model, Xc, yc, o.X_adv).sum()) / test.n_trials, 4) for o in outs],
            "broken_by": [o.info.get("broken_by") for o in outs], "wall_s": round(time.perf_counter() - w, 1),
            "cpu_s": round(time.process_time() - c, 1)}


def step_cost(model, test, scale, steps=100, eps=1e-4):
    correct = predict(model, test.X) == test.y
    Xc, yc = test.X[correct][:128], test.y[correct][:128]
    apgd = make_attack("apgd_ce", steps=steps)
    times = {"apgd_ce": [], "hand_pgd": []}
    for _ in range(3):
        t = time.perf_counter()
        apgd(model, Xc, yc, epsilons=(eps,), scale=scale)
        times["apgd_ce"].append(time.perf_counter() - t)
        t = time.perf_counter()
        with eval_mode(model):
            hand_pgd(model, Xc, yc, scale, eps, steps)
        times["hand_pgd"].append(time.perf_counter() - t)
    per = {k: min(v) / (len(Xc) * steps) * 1e3 for k, v in times.items()}
    return {"ms_per_trial_step": {k: round(v, 4) for k, v in per.items()}, "n_trials": len(Xc), "steps": steps,
            "ratio_apgd_over_hand": round(per["apgd_ce"] / per["hand_pgd"], 3)}


def fgsm_snr(cache, config, epsilons=(0.01, 0.05, 0.1, 0.3)):
    out = {}
    sets = {name: [epochs_to_data(e) for e in load_bundled(name)] for name in ("scp1", "scp2", "finger")}
    tr, te = sets["scp1"]
    rng = np.random.default_rng(0)

    def off(d):
        X = (d.X + rng.normal(0, 4200, size=(d.n_trials, d.n_chans, 1))).astype(np.float32)
        return dataclasses.replace(d, X=X)

    sets["scp1_dc_offsets"] = [off(tr), off(te)]
    for name, (train, test) in sets.items():
        model, _ = cache.get(train, "eegnet", config.train, seed=0)
        scale = channel_scale(test.X)
        correct = np.flatnonzero(predict(model, test.X) == test.y)
        outs = make_attack("fgsm")(model, test.X[correct], test.y[correct], epsilons=epsilons, scale=scale)
        rows = {}
        for e, o in zip(epsilons, outs):
            X_adv = test.X.copy()
            X_adv[correct] = o.X_adv
            st = perturbation_stats(test.X, X_adv, scale, attacked=correct, sfreq=test.sfreq)
            rows[str(e)] = {"snr_db": round(st["snr_db"], 3), "expected_db": round(-20 * np.log10(e), 3),
                            "bands_db": {k[4:-3]: (None if v is None else round(v, 2)) for k, v in st.items()
                                         if k.startswith("snr_") and k not in ("snr_db", "snr_fooled_db")}}
        err = max(abs(r["snr_db"] - r["expected_db"]) for r in rows.values())
        out[name] = {"n_attacked": int(len(correct)), "epsilons": rows, "max_abs_error_db": round(err, 3),
                     "ok": bool(err <= 1.0)}
        print("snr", name, json.dumps(out[name]), flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="eegnet,deep4,shallow")
    parser.add_argument("--out", default=str(Path(__file__).with_name("whitebox.json")))
    parser.add_argument("--parts", default="suite,reference,autoattack,cost,snr",
                        help="what to run; parts not run keep their entry of an existing --out file")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    torch.set_num_threads(2)
    config = SuiteConfig()
    cache = VictimCache(progress=False)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    scale = channel_scale(test.X)
    epsilons = (0.0, 0.01, 0.03, 0.05, 0.1, 0.3)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    report = {**old, "dataset": "scp1", "epsilons": list(epsilons), "unit": "rel (demeaned per-channel std)",
              "suite_linf_white_box": LINF_WHITE, "reference": "torchattacks 3.5.1 APGD-CE, 100 steps, 1 restart",
              "torch_threads": torch.get_num_threads(), "models": old.get("models", {})}
    for name in args.models.split(","):
        model, _ = cache.get(train, name, config.train, seed=0)
        if {"suite", "reference"} & set(parts):
            report["models"][name] = strength(name, model, test, scale, epsilons, parts,
                                              None if "suite" in parts else report["models"].get(name))
        if name == "eegnet" and "autoattack" in parts:
            report["autoattack_eegnet"] = autoattack_entry(model, test, scale, epsilons)
            print("autoattack", json.dumps(report["autoattack_eegnet"]), flush=True)
        if name == "eegnet" and "cost" in parts:
            report["step_cost_eegnet"] = step_cost(model, test, scale)
            print("cost", json.dumps(report["step_cost_eegnet"]), flush=True)
        Path(args.out).write_text(json.dumps(report, indent=1))
    if "snr" in parts:
        report["fgsm_snr"] = fgsm_snr(cache, config)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
