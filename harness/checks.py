"""Sanity checks on a suite's rows, in the AutoAttack spirit: signs that an evaluation went wrong.

Each check returns a dict ``{"name", "passed", "detail"}``; `run_checks` applies ``on_fail`` ("warn", "raise"
or "ignore") to the failures.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

from ..data._checks import EEGRobustError, check_option

TOL = 0.01  # one trial in a hundred


class GradientMaskingWarning(UserWarning):
    """A weaker threat model beat white-box at the same budget: gradients may be masked."""


class SanityCheckError(EEGRobustError, AssertionError):
    """A sanity check failed and ``on_fail="raise"`` was asked for."""


#: What separates one evaluation unit from another: rows of different subjects, folds or seeds are never compared.
UNIT = ("dataset", "subject", "session", "fold", "arm", "train_seed")


def _by(rows, *keys):
    out = defaultdict(list)
    for r in rows:
        out[tuple(r[k] for k in keys) + tuple(r.get(k) for k in UNIT)].append(r)
    return out


def _where(r) -> str:
    """" [subject/fold seed N]" for rows of a multi-subject study, "" for one official split."""
    if r.get("fold", "official") in ("official", "audit", None) and r.get("subject", "1") in ("1", None):
        return ""
    return f" [{r.get('subject')}/{r.get('fold')} seed {r.get('train_seed')}]"


def check_eps0_clean(rows):
    bad = [r for r in rows if r["epsilon"] == 0 and r["adv_rca"] != r["clean_rca"]]
    return {"name": "epsilon 0 gives clean accuracy", "passed": not bad,
            "detail": "; ".join(f"{r['model']}/{r['attack']}: {r['adv_rca']:.3f} vs {r['clean_rca']:.3f}"
                                for r in bad) or f"{sum(r['epsilon'] == 0 for r in rows)} rows"}


def check_budget(rows):
    bad = [r for r in rows if r["norm"] == "linf" and r["linf_rel"] > r["epsilon"] * (1 + 1e-3) + 1e-6]
    return {"name": "no L-inf perturbation exceeds its budget", "passed": not bad,
            "detail": "; ".join(f"{r['model']}/{r['attack']} eps={r['epsilon']}: {r['linf_rel']:.4g}"
                                for r in bad) or "all within budget"}


def check_l2_budget(rows):
    """L2 rows: the largest per-trial L2 norm in budget units over ``sqrt(n_chans * n_times)`` (``l2_rel``) within
    epsilon, i.e. every trial within `attacks.budget.l2_budget`. Rows written before ``l2_rel`` existed count as
    unchecked, and the detail says so."""
    l2 = [r for r in rows if r["norm"] == "l2" and r["epsilon"] > 0]
    unchecked = [r for r in l2 if r.get("l2_rel") is None]
    bad = [r for r in l2 if r.get("l2_rel") is not None and r["l2_rel"] > r["epsilon"] * (1 + 1e-3) + 1e-6]
    detail = "; ".join(f"{r['model']}/{r['attack']} eps={r['epsilon']}: {r['l2_rel']:.4g}" for r in bad)
    if not detail:
        detail = (f"{len(l2) - len(unchecked)} L2 rows within budget" if l2 else "no L2 rows")
        detail += f" ({len(unchecked)} rows from before l2_rel not checked)" if unchecked else ""
    return {"name": "no L2 perturbation exceeds its budget", "passed": not bad, "detail": detail}


def check_pgd_vs_fgsm(rows):
    white = [r for r in rows if r["threat_model"] == "white_box"]
    bad = []
    for (model, eps, seed, *_), group in _by(white, "model", "epsilon", "seed").items():
        acc = {r["attack"]: r["adv_rca"] for r in group}
        if "linf_pgd" in acc and "fgsm" in acc and acc["linf_pgd"] > acc["fgsm"] + TOL:
            bad.append(f"{model}{_where(group[0])} eps={eps}: PGD {acc['linf_pgd']:.3f} > FGSM {acc['fgsm']:.3f}")
    return {"name": "PGD at least as strong as FGSM", "passed": not bad, "detail": "; ".join(bad) or "holds"}


def check_gradient_masking(rows):
    bad = []
    for (model, eps, seed, *_), group in _by(rows, "model", "epsilon", "seed").items():
        white = [r["adv_rca"] for r in group if r["threat_model"] == "white_box" and r["norm"] == "linf"]
        if not white or eps == 0:
            continue
        for r in group:
            # compare on the same trials only: black-box rows use a subset, so compare their drop
            if r["threat_model"] in ("gray_box", "black_box") and r["norm"] == "linf":
                if r["clean_rca"] - r["adv_rca"] > max(g["drop"] for g in group
                                                       if g["threat_model"] == "white_box") + TOL:
                    bad.append(f"{model}{_where(r)} eps={eps}: {r['threat_model']} {r['attack']} drop {r['drop']:.3f}")
    return {"name": "no gray/black-box attack beats white-box (gradient masking)", "passed": not bad,
            "detail": "; ".join(bad) or "white-box is strongest everywhere"}


#: Minimal-norm and fixed-budget accuracies of one norm may differ by this much before the check flags them.
MINIMAL_TOL = 0.03


def check_unbounded(rows):
    """Unbounded (minimal-norm) white-box attacks flip every trial they attack: else gradients may be masked."""
    bad, n = [], 0
    for r in rows:
        never = (r.get("info") or {}).get("never_fooled")
        if r["threat_model"] != "white_box" or never is None or r["epsilon"] == 0:
            continue
        n += 1
        attacked = max(round(r["clean_rca"] * r["n_trials"]), 1)
        if never / attacked > TOL:
            bad.append(f"{r['model']}{_where(r)} {r['attack']}: {never} of {attacked} trials never flipped at any "
                       "norm")
    seen = sorted(set(bad))
    return {"name": "unbounded white-box attacks reach 0 % accuracy", "passed": not seen,
            "detail": "; ".join(seen) or (f"{n} minimal-norm rows flip every trial" if n else "no minimal-norm "
                                          "white-box attack ran")}


def check_minimal_vs_fixed(rows):
    """The minimal-norm L-inf curve and the fixed-budget L-inf attacks agree at every budget.

    A fixed-budget worst case more than `MINIMAL_TOL` above the minimal-norm attack's accuracy means the
    fixed-budget attacks are weak there (the reported worst case still takes both, per trial).
    """
    return _minimal_vs_fixed(rows, "linf")


def check_minimal_vs_fixed_l2(rows):
    """The same in L2: DeepFool or C&W (minimal-norm) against L2 PGD and L2 APGD (fixed budget). A review found L2
    PGD well above C&W on a 4-class EEGNet, a gap this check names."""
    return _minimal_vs_fixed(rows, "l2")


def _minimal_vs_fixed(rows, norm: str):
    bad, n = [], 0
    label = {"linf": "L-inf", "l2": "L2"}[norm]
    for (model, eps, *_), group in _by(rows, "model", "epsilon").items():
        white = [r for r in group if r["threat_model"] == "white_box" and r["norm"] == norm]
        minimal = [r["adv_rca"] for r in white if r.get("median_min_norm") is not None]
        fixed = [r["adv_rca"] for r in white if r.get("median_min_norm") is None]
        if eps == 0 or not minimal or not fixed:
            continue
        n += 1
        if min(fixed) > min(minimal) + MINIMAL_TOL:
            bad.append(f"{model}{_where(white[0])} eps={eps}: fixed-budget {min(fixed):.3f} > minimal-norm "
                       f"{min(minimal):.3f}")
    return {"name": f"minimal-norm curve and fixed-budget attacks agree ({label})", "passed": not bad,
            "detail": "; ".join(bad) or (f"agree within {MINIMAL_TOL} at {n} budgets" if n else
                                         f"no minimal-norm {label} attack beside fixed-budget ones")}


def check_noise_control(rows, max_change=0.03):
    bad = [f"{r['model']}{_where(r)} eps={r['epsilon']}: {r['drop']:+.3f}" for r in rows
           if r["threat_model"] == "control" and abs(r["drop"]) >= max_change]
    return {"name": f"random noise changes accuracy by < {max_change:.0%}", "passed": not bad,
            "detail": "; ".join(bad) or "holds at every epsilon"}


def check_above_chance(rows):
    """Each victim beats chance on the trials it is attacked on: else its robust accuracy means nothing."""
    seen, bad = set(), []
    for r in rows:
        key = (r["model"], r.get("subject"), r.get("fold"), r.get("train_seed"), r["n_trials"])
        if r["epsilon"] != 0 or "chance_rca" not in r or key in seen:
            continue
        seen.add(key)
        if r["clean_rca"] <= r["chance_rca"]:
            bad.append(f"{r['model']}{_where(r)}: clean {r['clean_rca']:.3f} <= chance bound {r['chance_rca']:.3f} "
                       f"on {r['n_trials']} trials")
    return {"name": "every victim is above chance (95 % binomial bound of the majority class)", "passed": not bad,
            "detail": "; ".join(bad) or f"{len(seen)} evaluations above chance"}


CHECKS = (check_above_chance, check_eps0_clean, check_budget, check_l2_budget, check_pgd_vs_fgsm,
          check_gradient_masking, check_unbounded, check_minimal_vs_fixed, check_minimal_vs_fixed_l2,
          check_noise_control)


def run_checks(rows, on_fail: str = "warn") -> list[dict]:
    """Run every check on ``rows``; warn about, raise on, or ignore failures."""
    check_option("on_fail", on_fail, ("warn", "raise", "ignore"))
    results = [check(rows) for check in CHECKS]
    for res in results:
        if res["passed"] or on_fail == "ignore":
            continue
        msg = f"sanity check failed: {res['name']}: {res['detail']}"
        if on_fail == "raise":
            raise SanityCheckError(msg)
        masking = ("masking" in res["name"] or "unbounded" in res["name"] or "minimal-norm" in res["name"])
        category = GradientMaskingWarning if masking else UserWarning
        warnings.warn(msg, category, stacklevel=2)
    return results
