"""`audit`: run the attack suites on a saved model and give a verdict a CI job can act on."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import binom

from ..data import epochs_to_data, load_epochs

from ..models import conform_data
from .config import SuiteConfig
from .loaders import load_victim
from .metrics import rca
from .results import SuiteResult
from .store import Store
from .suite import FoldKeys, run_suite

logger = logging.getLogger(__name__)


class ChanceLevelWarning(UserWarning):
    """The audited model is not above chance on the audit epochs: its input is probably wrong."""


def chance_bound(y, alpha: float = 0.05) -> float:
    """Accuracy a chance-level classifier (always the majority class) stays below with probability 1-alpha."""
    y = np.asarray(y)
    p0 = np.bincount(y).max() / len(y)
    return float(binom.ppf(1 - alpha, len(y), p0) / len(y))


def worst_row(rows):
    """The attacked cell with the largest accuracy drop (controls excluded), or None."""
    attacked = [r for r in rows if r["threat_model"] != "control" and r["epsilon"] > 0]
    return max(attacked, key=lambda r: r["drop"], default=None)


def verdict_line(rows, max_drop=None) -> str:
    worst = worst_row(rows)
    if worst is None:
        return "verdict: no attack ran"
    cell = (f"{worst['model']} {worst['threat_model']} {worst['attack']}"
            + (f" <- {worst['substitute']}" if worst["substitute"] else "")
            + f" eps={worst['epsilon']:g}: accuracy {worst['clean_rca']:.3f} -> {worst['adv_rca']:.3f} "
              f"(drop {worst['drop']:.3f})")
    if max_drop is None:
        return f"verdict: worst cell {cell}"
    status = "FAIL" if worst["drop"] > max_drop else "PASS"
    return f"verdict: {status} (max drop {max_drop:g}); worst cell {cell}"


def run_audit(model_path, data_path, *, config: SuiteConfig, out_dir, train_path=None, arch=None,
              input_unit="uV", standardize="none", device="cpu", resume=False, progress=True) -> SuiteResult:
    """Load ``model_path`` safely, check it on the epochs at ``data_path``, run the suite and save results.

    ``out_dir/results.json`` is rewritten atomically after every finished cell; with ``resume`` the cells
    already there are kept and not run again.
    """
    out = Path(out_dir)
    test = epochs_to_data(load_epochs(data_path))
    train = epochs_to_data(load_epochs(train_path)) if train_path is not None else None
    victim, info = load_victim(model_path, test, arch=arch, input_unit=input_unit, standardize=standardize)
    victim = victim.to(device)
    test = conform_data(victim, test, name="the model")
    name = info["arch"] or "victim"
    notes = []
    acc, bound = rca(test.y, _predict(victim, test.X)), chance_bound(test.y)
    if acc <= bound:
        msg = (f"the model's clean accuracy {acc:.3f} on {test.n_trials} audit trials is not above chance "
               f"(95% bound {bound:.3f}): check --input-unit and --standardize; robustness numbers of a model that "
               "does not work on these epochs mean nothing")
        warnings.warn(msg, ChanceLevelWarning, stacklevel=2)
        notes.append(msg)
    threats = config.threat_models
    if not info["gradients"] and "white_box" in threats:
        threats = tuple(t for t in threats if t != "white_box")
        notes.append("white_box skipped: an ONNX model has no gradients")
    config = replace(config, threat_models=threats, dataset=_dataset_name(data_path))
    keys = FoldKeys(dataset=config.dataset, subject="1", fold="audit", protocol="given")
    result = run_suite(config, test=test, train=train, victims={name: victim}, progress=progress,
                       store=Store(out), resume=resume, keys=keys, device=str(device),
                       require_attack=True)
    result.provenance.update({"audit": {**info, "data": str(data_path), "train_data": None if train_path is None
                                        else str(train_path), "input_unit": input_unit, "standardize": standardize,
                                        "clean_rca": acc, "chance_bound": bound, "notes": notes}})
    result.provenance["skipped"] = result.provenance.get("skipped", []) + [n for n in notes if "skipped" in n]
    return result


def _predict(model, X):
    from ..models import predict

    return predict(model, X)


def _dataset_name(path) -> str:
    """The audit epochs' file name without its epochs suffix, as the dataset of every row."""
    name = Path(str(path)).name
    for suffix in ("-epo.fif.gz", "_epo.fif.gz", "-epo.fif", "_epo.fif"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem
