"""Accuracy metrics: raw (RCA) and balanced (BCA) classification accuracy, and what an attack changed."""

from __future__ import annotations

import numpy as np

from ..attacks.budget import band_snr_db, l2_norms, linf_norms, pooled_snr_db


def rca(y_true, y_pred) -> float:
    """Raw classification accuracy."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def bca(y_true, y_pred) -> float:
    """Balanced classification accuracy: the mean of per-class recalls (over classes present in ``y_true``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def perturbation_stats(X, X_adv, scale, *, attacked=None, fooled=None, sfreq=None) -> dict:
    """Norms and SNR of the perturbation actually applied (definitions in `attacks.budget`).

    Parameters
    ----------
    X, X_adv : ndarray of shape (n_trials, n_chans, n_times)
        Clean and perturbed trials, microvolts.
    scale : ndarray of shape (n_chans,)
        Budget unit per channel.
    attacked : ndarray of int or bool, default=None
        The trials the attack ran on (default: all); SNR is pooled over them, unchanged ones included.
    fooled : ndarray of bool of shape (n_trials,), default=None
        Trials whose label flipped: ``snr_fooled_db`` is pooled over them.
    sfreq : float, default=None
        Sampling rate; when given, ``snr_<band>_db`` per band of `attacks.budget.BANDS`.

    Returns max |delta| (microvolts and budget units) and the mean L2 norm (microvolts) over the changed trials, the
    number of changed trials, and the pooled SNRs in dB (inf where nothing was changed).
    """
    delta = X_adv.astype(np.float64) - X
    n = len(X)
    attacked = np.ones(n, bool) if attacked is None else _mask(attacked, n)
    changed = np.abs(delta).reshape(n, -1).max(axis=1) > 0
    stats = {"linf_uv": 0.0, "linf_rel": 0.0, "l2_uv": 0.0, "n_perturbed": int(changed.sum())}
    if changed.any():
        d = delta[changed]
        stats.update(linf_uv=float(linf_norms(d).max()),
                     linf_rel=float((np.abs(d) / np.asarray(scale)[None, :, None]).max()),
                     l2_uv=float(l2_norms(d).mean()))
    stats["snr_db"] = pooled_snr_db(X[attacked], delta[attacked])
    sel = attacked if fooled is None else _mask(fooled, n)
    stats["snr_fooled_db"] = pooled_snr_db(X[sel], delta[sel]) if sel.any() else None
    if sfreq is not None:
        for band, value in band_snr_db(X[attacked], delta[attacked], sfreq).items():
            stats[f"snr_{band}_db"] = value
    return stats


def _mask(sel, n) -> np.ndarray:
    sel = np.asarray(sel)
    if sel.dtype == bool:
        return sel
    mask = np.zeros(n, bool)
    mask[sel.astype(int)] = True
    return mask
