"""Accuracy metrics: raw (RCA) and balanced (BCA) classification accuracy, and what an attack changed."""

from __future__ import annotations

import numpy as np

from ..attacks.budget import l2_norms, linf_norms, snr_db


def rca(y_true, y_pred) -> float:
    """Raw classification accuracy."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def bca(y_true, y_pred) -> float:
    """Balanced classification accuracy: the mean of per-class recalls (over classes present in ``y_true``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def perturbation_stats(X, X_adv, scale) -> dict:
    """Norms and SNR of the perturbation actually applied, over the trials that were changed.

    Returns max |delta| in microvolts and in budget units, the mean L2 norm per trial in microvolts, and the
    median SNR in dB (inf when nothing was changed).
    """
    delta = X_adv.astype(np.float64) - X
    changed = np.abs(delta).reshape(len(X), -1).max(axis=1) > 0
    if not changed.any():
        return {"linf_uv": 0.0, "linf_rel": 0.0, "l2_uv": 0.0, "snr_db": float("inf"), "n_perturbed": 0}
    d = delta[changed]
    return {
        "linf_uv": float(linf_norms(d).max()),
        "linf_rel": float((np.abs(d) / np.asarray(scale)[None, :, None]).max()),
        "l2_uv": float(l2_norms(d).mean()),
        "snr_db": float(np.median(snr_db(X[changed], d))),
        "n_perturbed": int(changed.sum()),
    }
