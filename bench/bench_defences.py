"""Defences under the same suite: clean and robust accuracy per training arm, training time, certification.

Measures, on the bundled SCP1 official split (268 training, 293 test trials), for each architecture, arm and seed:

- clean accuracy and the per-trial worst case (AutoAttack's robust accuracy) at L-inf eps 0.02 / 0.05 / 0.1 (unit
  rel) of the white-box ensemble FGSM + PGD-40 + APGD-CE + APGD-DLR (margin loss on two classes), every test trial;
- whether the gradient-masking checks pass for that arm's rows (FMN minimal-norm curve, PGD >= FGSM, the
  score-based Square at eps 0.05 with 200 queries never beating white-box): an arm whose checks fail
  is listed with ``verified: false`` and its robust accuracy is not a robustness claim;
- training wall and CPU seconds per arm (victims trained one after another, torch threads as set below);
- with ``--certify``: randomized smoothing of the ``noise`` arm (sigma 0.25 and 0.5, each certifying the model
  trained at its own sigma), certified accuracy at L2 radius 0.25 and 0.5 in budget units, seconds per trial.

Writes ``bench/defences.json`` after every (architecture, seed), so an interrupted run keeps what it measured.
Trained victims are cached (``$EEGROBUST_CACHE``), so a rerun only re-attacks.

    python bench/bench_defences.py                       # EEGNet, 3 seeds, all arms
    python bench/bench_defences.py --models deep4,shallow --arms none,fgsm_at,pgd_at --seeds 0
    python bench/bench_defences.py --certify-only --certify-n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from eegrobust.data import epochs_to_data, load_bundled  # noqa: E402
from eegrobust.harness.analysis import worst_case  # noqa: E402
from eegrobust.harness.arms import Arm, parse_arms  # noqa: E402
from eegrobust.harness.cache import VictimCache  # noqa: E402
from eegrobust.harness.certify import CertifyConfig, run_certification  # noqa: E402
from eegrobust.harness.checks import run_checks  # noqa: E402
from eegrobust.harness.config import SuiteConfig  # noqa: E402
from eegrobust.harness.suite import run_suite, victim_name  # noqa: E402

ARMS = "none,pgd_at,trades,fgsm_at,augment,gan"
EPS = (0.02, 0.05, 0.1)
ENSEMBLE = ("fgsm", "linf_pgd", "apgd_ce", "apgd_dlr")
#: checks that say whether an arm's robust accuracy can be trusted (gradient masking and attack strength)
MASKING_CHECKS = ("PGD at least as strong as FGSM", "no gray/black-box attack beats white-box (gradient masking)",
                  "unbounded white-box attacks reach 0 % accuracy", "minimal-norm curve and fixed-budget attacks agree "
                  "(L-inf)")


def suite_config(arch, arms, seed):
    return SuiteConfig(models=(arch,), arms=arms, seeds=(seed,), epsilons=EPS, pgd_steps=40,
                       threat_models=("white_box", "black_box", "control"), white_box=(*ENSEMBLE, "fmn"),
                       black_box=("square",), query_epsilons=(0.05,), max_queries=200, n_seed_trials=60)


def train_timed(cache, train, arch, arm, seed):
    """Train (or load) one victim, with wall and CPU seconds of this call."""
    t0, c0 = time.perf_counter(), time.process_time()
    n0 = cache.n_trained
    model, _ = cache.get(train, arch, {}, arm=arm, seed=seed, unit="rel")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    info = getattr(model, "arm_", None) or {}
    trained = cache.n_trained > n0
    return model, {"trained_now": trained, "wall_s": round(wall, 1) if trained else None,
                   "cpu_s": round(cpu, 1) if trained else None, "fit_s": info.get("fit_s"),
                   "prepare_s": info.get("prepare_s"), "crafting_s": info.get("crafting_s"),
                   "epochs": len(model.history_ or []), "best_epoch": model.best_epoch_}


def measure(arch, arms, seed, train, test, cache) -> list:
    timing = {a: train_timed(cache, train, arch, a, seed)[1] for a in arms}
    config = suite_config(arch, arms, seed)
    t0 = time.perf_counter()
    res = run_suite(config, train=train, test=test, cache=cache, progress=False, on_fail="ignore")
    attack_s = time.perf_counter() - t0
    wc = worst_case(res.outcomes_frame(), attacks=ENSEMBLE)
    out = []
    for arm in arms:
        name = victim_name(arch, arm)
        mine = wc[(wc["model"] == name) & (wc["norm"] == "linf")]
        rows = [r for r in res.rows if r["model"] == name]
        checks = {c["name"]: {"passed": c["passed"], "detail": c["detail"]} for c in run_checks(rows, on_fail="ignore")}
        masking = {k: v for k, v in checks.items() if k in MASKING_CHECKS}
        clean = [r["clean_rca"] for r in rows if r["threat_model"] == "white_box" and r["epsilon"] == 0][0]
        per_attack = {f"{r['attack']}@{r['epsilon']:g}": r["adv_rca"] for r in rows
                      if r["epsilon"] > 0 and r["threat_model"] in ("white_box", "gray_box", "black_box")}
        out.append({"arch": arch, "arm": arm, "seed": seed, "clean_rca": clean,
                    "robust_rca": {f"{e:g}": float(mine[mine["epsilon"] == e]["robust_rca"].iloc[0]) for e in EPS},
                    "verified": all(v["passed"] for v in masking.values()), "masking_checks": masking,
                    "per_attack_rca": per_attack, "training": timing[arm], "arm_params": Arm.make(arm).kwargs,
                    "attack_wall_s_all_arms": round(attack_s, 1)})
    return out


def summarize(results) -> list:
    out = []
    for key in dict.fromkeys((r["arch"], r["arm"]) for r in results):
        rs = [r for r in results if (r["arch"], r["arm"]) == key]
        none = [r for r in results if r["arch"] == key[0] and r["arm"] == "none"]
        row = {"arch": key[0], "arm": key[1], "seeds": [r["seed"] for r in rs], "n_seeds": len(rs),
               "verified_all_seeds": all(r["verified"] for r in rs)}
        row["clean_rca"] = _ms([r["clean_rca"] for r in rs])
        for e in EPS:
            row[f"robust_rca@{e:g}"] = _ms([r["robust_rca"][f"{e:g}"] for r in rs])
        fit = [r["training"]["fit_s"] for r in rs if r["training"]["fit_s"] is not None]
        wall = [r["training"]["wall_s"] for r in rs if r["training"]["wall_s"] is not None]
        cpu = [r["training"]["cpu_s"] for r in rs if r["training"]["cpu_s"] is not None]
        row["train_wall_s"] = _ms(wall) if wall else None
        row["train_cpu_s"] = _ms(cpu) if cpu else None
        row["fit_s"] = _ms(fit) if fit else None
        paired = {r["seed"]: r for r in none}
        if key[1] != "none" and all(r["seed"] in paired for r in rs):
            row["gain_vs_none"] = {f"{e:g}": _ms([r["robust_rca"][f"{e:g}"] - paired[r["seed"]]["robust_rca"][f"{e:g}"]
                                                 for r in rs]) for e in EPS}
            row["clean_cost_vs_none"] = _ms([paired[r["seed"]]["clean_rca"] - r["clean_rca"] for r in rs])
            row["train_time_ratio_vs_none"] = _ms([r["training"]["wall_s"] / paired[r["seed"]]["training"]["wall_s"]
                                                   for r in rs if r["training"]["wall_s"]
                                                   and paired[r["seed"]]["training"]["wall_s"]]) if wall else None
        out.append(row)
    return out


def _ms(values):
    v = np.asarray(values, float)
    if v.size == 0:
        return None
    return {"mean": round(float(v.mean()), 4), "sd": round(float(v.std(ddof=1)), 4) if v.size > 1 else None,
            "values": [round(float(x), 4) for x in v]}


def certification(train, test, cache, args) -> dict:
    out = {"config": None, "runs": []}
    for sigma in args.certify_sigmas:
        model, timing = train_timed(cache, train, "eegnet", f"noise(sigma={sigma})", 0)
        config = CertifyConfig(sigmas=(sigma,), n0=100, n=args.certify_n, alpha=0.001, radii=(0.0, 0.25, 0.5, 1.0),
                               n_trials=args.certify_trials)
        res = run_certification(model, test, config, seed=0, model_name=f"eegnet+noise(sigma={sigma})")
        out["config"] = res["config"]
        out["provenance"] = res["provenance"]
        out["runs"].append({"sigma": sigma, "training": timing,
                            "clean_rca_base_all_test_trials": float((torch.as_tensor(_predict(model, test.X)) ==
                                                     torch.as_tensor(test.y)).float().mean()),
                            "rows": [{k: r[k] for k in ("radius", "radius_rms", "certified_accuracy", "abstain_rate",
                                                        "seconds_per_trial", "n_trials")} for r in res["rows"]]})
        _write(args.out, {"certification": out}, merge=True)
    return out


def _predict(model, X):
    from eegrobust.models import predict

    return predict(model, X)


def _write(path, payload, merge=False):
    path = Path(path)
    data = json.loads(path.read_text()) if merge and path.is_file() else {}
    data.update(payload)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="eegnet")
    p.add_argument("--arms", default=ARMS)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench/defences.json")
    p.add_argument("--certify", action="store_true", help="also certify the noise arm (randomized smoothing)")
    p.add_argument("--certify-only", action="store_true")
    p.add_argument("--certify-sigmas", default="0.25,0.5")
    p.add_argument("--certify-n", type=int, default=10_000)
    p.add_argument("--certify-trials", type=int, default=None)
    args = p.parse_args()
    args.certify_sigmas = [float(s) for s in args.certify_sigmas.split(",")]
    torch.set_num_threads(args.threads)
    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    cache = VictimCache(progress=False)
    arms = parse_arms(args.arms)
    models = [m.strip() for m in args.models.split(",")]
    meta = {"dataset": "scp1", "n_train": train.n_trials, "n_test": test.n_trials, "torch_threads": args.threads,
            "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "epsilons": list(EPS), "budget": "L-inf, unit rel (per-channel std of the "
            "demeaned test trials); arms train at eps in the per-channel std of the training trials",
            "robust_rca": "per-trial worst case over " + " + ".join(ENSEMBLE) + " (PGD-40 with random start, APGD "
            "100 steps), all test trials, one attack seed per training seed", "arms": list(arms),
            "masking_checks": list(MASKING_CHECKS) + ["FMN minimal-norm L-inf curve, Square (200 queries) at 0.05"]}
    results = []
    path = Path(args.out)
    if path.is_file():
        results = json.loads(path.read_text()).get("results", [])
    if not args.certify_only:
        for seed in (int(s) for s in args.seeds.split(",")):
            for arch in models:
                todo = [a for a in arms if not any(r["arch"] == arch and r["arm"] == a and r["seed"] == seed
                                                   for r in results)]
                if not todo:
                    continue
                t0 = time.perf_counter()
                got = measure(arch, tuple(todo), seed, train, test, cache)
                results += [r for r in got if r["arm"] in todo]
                print(f"{arch} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
                for r in got:
                    print(f"  {r['arm']:>10}: clean {r['clean_rca']:.3f}, robust@0.05 {r['robust_rca']['0.05']:.3f}"
                          f", verified {r['verified']}, train {r['training']['wall_s']} s", flush=True)
                _write(path, {**meta, "results": results, "summary": summarize(results)}, merge=True)
    if args.certify or args.certify_only:
        certification(train, test, cache, args)


if __name__ == "__main__":
    main()
