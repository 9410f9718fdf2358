"""`audit`: run the attack suites on a saved model and give a verdict a CI job can act on."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import binom

from ..data import epochs_to_data, load_epochs
from ..data._checks import NoVerdictError
from ..models import conform_data
from .config import SuiteConfig
from .loaders import load_victim
from .metrics import exceeds, rca
from .results import SuiteResult
from .store import Store
from .suite import FoldKeys, run_suite

logger = logging.getLogger(__name__)


class ChanceLevelWarning(UserWarning):
    """The audited model is not above chance on the audit epochs; the note says what was checked and why."""


def chance_bound(y, alpha: float = 0.05) -> float:
    """Accuracy a chance-level classifier (always the majority class) stays below with probability 1-alpha."""
    y = np.asarray(y)
    p0 = np.bincount(y).max() / len(y)
    return float(binom.ppf(1 - alpha, len(y), p0) / len(y))


def worst_row(rows):
    """The attacked cell with the largest accuracy drop (controls excluded), or None."""
    attacked = [r for r in rows if r["threat_model"] != "control" and r["epsilon"] > 0]
    return max(attacked, key=lambda r: r["drop"], default=None)


def worst_cases(result) -> list[dict]:
    """Per-trial worst case (AutoAttack's robust accuracy) of each threat model and norm, per evaluation unit and
    epsilon > 0: a trial is robust only if it is correct clean and under every attack of the threat model and norm
    (`harness.analysis.worst_case`, on the trials all of them evaluated). L-inf and L2 attacks are never pooled,
    nor threat models. Each dict has the keys of a row that a verdict reads (``model``, ``threat_model``, ``norm``,
    ``epsilon``, ``clean_rca``, ``adv_rca``, ``drop``) plus ``attacks`` (comma-joined), ``n_attacks``, ``n_trials``
    and ``attack_seed``. Empty for results without per-trial outcomes."""
    if not getattr(result, "outcomes", None):
        return []
    from .analysis import worst_case_by_threat

    out = []
    for rec in worst_case_by_threat(result.outcomes_frame()).to_dict("records"):
        if rec["n_trials"]:
            out.append({"model": rec["model"], "threat_model": rec["threat_model"], "norm": rec["norm"],
                        "epsilon": float(rec["epsilon"]), "attacks": rec["attacks"], "n_attacks": int(rec["n_attacks"]),
                        "n_trials": int(rec["n_trials"]), "attack_seed": rec["attack_seed"],
                        "clean_rca": float(rec["clean_rca"]), "adv_rca": float(rec["robust_rca"]),
                        "drop": float(rec["clean_rca"] - rec["robust_rca"])})
    return out


def worst_drop(result):
    """The largest accuracy drop of an audit: over its attacked cells and over the per-trial worst cases of several
    attacks (`worst_cases`), which can drop further than any one attack. Returns ``(drop, description)`` or None
    when nothing was attacked; a worst case is named only when it drops further than every single cell."""
    row = worst_row(result.rows)
    if row is None:
        return None
    cell = (f"worst cell {row['model']} {row['threat_model']} {row['attack']}"
            + (f" <- {row['substitute']}" if row["substitute"] else "")
            + f" eps={row['epsilon']:g}: accuracy {row['clean_rca']:.3f} -> {row['adv_rca']:.3f} "
              f"(drop {row['drop']:.3f})")
    best = (row["drop"], cell)
    for w in worst_cases(result):
        if w["n_attacks"] > 1 and w["drop"] > best[0] + 1e-9:
            best = (w["drop"], f"worst case per trial {w['model']} {w['threat_model']} {_NORMS[w['norm']]} over "
                               f"{w['attacks'].replace(',', ', ')} eps={w['epsilon']:g}: accuracy "
                               f"{w['clean_rca']:.3f} -> {w['adv_rca']:.3f} (drop {w['drop']:.3f}, "
                               f"{w['n_trials']} trials)")
    return best


_NORMS = {"linf": "L-inf", "l2": "L2"}


def worst_case_table(cases) -> str:
    """`worst_cases` as a terminal table: model, threat model, norm, attacks, then robust accuracy per epsilon
    (mean over attack seeds); empty when no threat model and norm had more than one attack."""
    from collections import defaultdict

    from .tables import text_table

    if not any(w["n_attacks"] > 1 for w in cases):
        return ""
    eps = sorted({w["epsilon"] for w in cases})
    cells = defaultdict(list)
    for w in cases:
        cells[(w["model"], w["threat_model"], _NORMS[w["norm"]], w["attacks"]), w["epsilon"]].append(w["adv_rca"])
    keys = list(dict.fromkeys(k for k, _ in cells))
    body = [[*k, *(sum(cells[k, e]) / len(cells[k, e]) if cells.get((k, e)) else None for e in eps)] for k in keys]
    return text_table(["model", "threat", "norm", "attacks"] + [f"eps={e:g}" for e in eps], body)


def verdict_line(result, max_drop=None) -> str:
    """The audit's verdict: PASS/FAIL against ``max_drop`` on `worst_drop` (a single attack, or the per-trial worst
    case over a threat model's attacks of one norm when that is worse)."""
    worst = worst_drop(result)
    if worst is None:
        return "verdict: no attack ran"
    if max_drop is None:
        return f"verdict: {worst[1]}"
    status = "FAIL" if exceeds(worst[0], max_drop) else "PASS"
    return f"verdict: {status} (max drop {max_drop:g}); {worst[1]}"


def no_verdict_reason(result, max_drop=None):
    """Why no robustness verdict is possible for an audit result, or None when there is one.

    No trial to attack (the model classifies none of them correctly) means every attacked cell measured nothing;
    a gate (``max_drop``) on a model that is not above chance would pass on numbers that mean nothing.
    """
    attacked = [r for r in result.rows if r["threat_model"] != "control" and r["epsilon"] > 0]
    audit = result.provenance.get("audit", {})
    if attacked and all(r["clean_rca"] == 0 for r in attacked):
        return (f"the model classifies none of the audit trials correctly, so no attack had a trial to attack "
                f"(clean accuracy {audit.get('clean_rca', 0.0):.3f}); see the note above")
    if max_drop is not None and audit.get("at_chance"):
        if audit.get("clean_rca", 0.0) > audit.get("chance_bound", 1.0):  # at chance on --train-data instead
            return (f"the model is at chance on its --train-data (accuracy {audit.get('train_rca') or 0.0:.3f}), "
                    "so it gets another input than in training and a --max-drop gate on it would pass on numbers "
                    "that mean nothing; see the note above")
        return (f"the model is not above chance on these epochs (clean accuracy {audit['clean_rca']:.3f}, 95% "
                f"bound {audit['chance_bound']:.3f}), so a --max-drop gate on it would pass on numbers that mean "
                "nothing; see the note above")
    failed = [c for c in getattr(result, "checks", []) or []
              if not c.get("passed", True) and str(c.get("name", "")).startswith(GATE_CHECKS)]
    if max_drop is not None and failed:
        return (f"sanity check {failed[0]['name']!r} failed ({failed[0].get('detail', '')}), so the numbers a "
                "--max-drop gate would compare mean nothing; see 'Sanity checks' above")
    return None


#: Sanity checks whose failure makes the compared numbers meaningless (a victim at chance on the trials an attack
#: scored, a clean reference that is not clean, a perturbation over its budget): a --max-drop gate then gives no
#: verdict. The others (noise, PGD against FGSM, gradient masking) are warnings about attack strength.
GATE_CHECKS = ("every victim is above chance", "epsilon 0 gives clean accuracy", "no L-inf perturbation exceeds",
               "no L2 perturbation exceeds")


def run_audit(model_path, data_path, *, config: SuiteConfig, out_dir, train_path=None, arch=None,
              input_unit="uV", standardize="none", device="cpu", resume=False, progress=True,
              epochs_kwargs=None, trust_code=False, classes=None, arch_kwargs=None) -> SuiteResult:
    """Load ``model_path`` safely, check it on the epochs at ``data_path``, run the suite and save results.

    ``out_dir/results.json`` is rewritten atomically after every finished cell; with ``resume`` the cells
    already there are kept and not run again. ``epochs_kwargs`` (``tmin``, ``tmax``, ``event_id``) go to
    `data.load_epochs` for both files (raw recordings); ``trust_code``, ``classes`` and ``arch_kwargs`` to
    `harness.loaders.load_victim` (with training epochs, ``standardize`` takes its statistics from them).

    Raises
    ------
    NoVerdictError
        Nothing would be attacked (no attack of the chosen threat models at a budget > 0).
    """
    out = Path(out_dir)
    epochs_kwargs = dict(epochs_kwargs or {})
    test = epochs_to_data(load_epochs(data_path, **epochs_kwargs))
    train = epochs_to_data(load_epochs(train_path, **epochs_kwargs)) if train_path is not None else None
    victim, info = load_victim(model_path, test, arch=arch, input_unit=input_unit, standardize=standardize,
                               trust_code=trust_code, classes=classes, arch_kwargs=arch_kwargs, stats_data=train)
    victim = victim.to(device)
    test = conform_data(victim, test, name="the model")
    name = info["arch"] or "victim"
    notes, skips = list(info.pop("notes", [])), []
    logits = _logits(victim, test.X)
    pred = logits.argmax(1)
    check = _chance_check(victim, test, pred, train)
    if check["note"]:
        warnings.warn(check["note"], ChanceLevelWarning, stacklevel=2)
        notes.append(check["note"])
    scale_note = _logit_scale_note(logits)
    if scale_note:
        notes.append(scale_note)
    threats = config.threat_models
    if not info["gradients"] and "white_box" in threats:
        threats = tuple(t for t in threats if t != "white_box")
        skips.append("white_box skipped: an ONNX model has no gradients")
    if np.unique(pred).size == 1 and "black_box" in threats and "substitute" in config.black_box:
        config = replace(config, black_box=tuple(a for a in config.black_box if a != "substitute"))
        skips.append(f"black_box substitute skipped: the model predicts {test.classes[pred[0]]!r} for every audit "
                     "trial, so no substitute can be trained on its labels")
    notes += skips
    config = replace(config, threat_models=threats, dataset=_dataset_name(data_path))
    keys = FoldKeys(dataset=config.dataset, subject="1", fold="audit", protocol="given")
    try:
        result = run_suite(config, test=test, train=train, victims={name: victim}, progress=progress,
                           store=Store(out), resume=resume, keys=keys, device=str(device),
                           require_attack=True)
    except NoVerdictError as err:
        if not skips:
            raise
        raise NoVerdictError(f"{str(err).rstrip('.')}; skipped by the audit: {'; '.join(skips)}.") from None
    result.provenance.update({"audit": {**info, "data": str(data_path), "train_data": None if train_path is None
                                        else str(train_path), "input_unit": input_unit, "standardize": standardize,
                                        "epochs_kwargs": epochs_kwargs, "clean_rca": check["clean_rca"],
                                        "chance_bound": check["chance_bound"], "at_chance": bool(check["note"]),
                                        "prediction_shares": check["prediction_shares"],
                                        "train_rca": check["train_rca"], "notes": notes}})
    result.provenance["skipped"] = result.provenance.get("skipped", []) + skips
    return result


def _chance_check(victim, test, pred, train) -> dict:
    """Clean accuracy against the 95 % binomial chance bound, the class balance of the predictions and, with
    training data, the accuracy on it; a note naming what was checked and the likely cause when not above chance."""
    acc, bound = rca(test.y, pred), chance_bound(test.y)
    counts = np.bincount(pred, minlength=len(test.classes))
    shares = {str(c): float(n / len(pred)) for c, n in zip(test.classes, counts)}
    top = int(counts.argmax())
    train_acc = train_bound = None
    if train is not None:
        train = conform_data(victim, train, name="the model (--train-data)")
        train_acc, train_bound = rca(train.y, _predict(victim, train.X)), chance_bound(train.y)
    check = {"clean_rca": acc, "chance_bound": bound, "prediction_shares": shares, "train_rca": train_acc,
             "note": None}
    if acc > bound:
        if train_acc is not None and train_acc <= train_bound:  # above chance here, at chance on its own training
            check["note"] = (f"the model is at chance on its --train-data (accuracy {train_acc:.3f} on "
                             f"{train.n_trials} trials vs the 95% chance bound {train_bound:.3f}) though above chance "
                             f"on the audit epochs ({acc:.3f} vs {bound:.3f}): a model is not at chance on the data it "
                             "was trained on unless it gets another input than in training, so check --input-unit, "
                             "--standardize and that --train-data is what the model was trained on; robustness "
                             "numbers of a model given the wrong input mean nothing")
        return check
    checked = (f"clean accuracy {acc:.3f} on {test.n_trials} audit trials vs the 95% chance bound {bound:.3f}; "
               f"predictions {counts[top] / len(pred):.0%} {test.classes[top]!r}")
    if train_acc is not None:
        checked += f"; accuracy {train_acc:.3f} on the {train.n_trials} --train-data trials (bound {train_bound:.3f})"
    low = binom.ppf(0.05, test.n_trials, 1 / len(test.classes)) / test.n_trials
    if counts[top] >= 0.95 * len(pred):
        cause = ("it predicts one class for (almost) every trial, which is what a wrong input scale or "
                 "preprocessing does: check --input-unit and --standardize")
    elif acc < low:
        cause = ("it is reliably below chance, as when its outputs or the labels are swapped: check --classes (the "
                 "model's output order) and the class names (--event-id) of the epochs")
    elif train_acc is not None and train_acc <= train_bound:
        cause = ("it is at chance on its training data too: check --input-unit, --standardize and that the model "
                 "file belongs to these epochs")
    elif train_acc is not None:
        cause = ("it is above chance on its training data, so the input options look right and the model does not "
                 "generalise to these epochs (another session or subject?)")
    else:
        cause = ("it may not generalise to these epochs, or get another input than in training; give "
                 "--train-data to tell these apart")
    check["note"] = (f"the model is not above chance on these epochs ({checked}): {cause}; robustness numbers of "
                     "a model that does not work on these epochs mean nothing")
    return check


def _predict(model, X):
    from ..models import predict

    return predict(model, X)


def _logits(model, X):
    from ..models.decoder import predict_logits

    return predict_logits(model, X)


#: Median gap between a model's two largest logits above which its cross-entropy saturates in float32 on most
#: trials; trained classifiers give about 1 to 30, a model fed inputs 1e6 times its training scale far more.
HUGE_LOGIT_GAP = 1e3


def _logit_scale_note(logits) -> str | None:
    """A note when the clean logits are far larger than any trained classifier's (median top-2 gap above
    `HUGE_LOGIT_GAP`): what a unit mistake does; the gradient attacks follow the logit margin there."""
    top = np.sort(np.asarray(logits, dtype=np.float64), axis=1)
    gap = float(np.median(top[:, -1] - top[:, -2])) if top.shape[1] >= 2 else 0.0
    if not np.isfinite(gap) or gap <= HUGE_LOGIT_GAP:
        return None
    return (f"the model's logits are huge (median gap {gap:.3g} between its two largest logits on the audit trials; "
            "trained classifiers give about 1 to 30), which is what a model gets when fed inputs about 1e6 times its "
            "training scale: is --input-unit right (V for a model trained in volts)? Cross-entropy saturates there, "
            "so the gradient attacks followed the logit margin")


def _dataset_name(path) -> str:
    """The audit epochs' file name without its epochs suffix, as the dataset of every row."""
    name = Path(str(path)).name
    for suffix in ("-epo.fif.gz", "_epo.fif.gz", "-epo.fif", "_epo.fif"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
