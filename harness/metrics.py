"""Accuracy metrics: raw (RCA) and balanced (BCA) classification accuracy, and what an attack changed."""

from __future__ import annotations

import numpy as np

from ..attacks.budget import BANDS, _ratio_db, band_energy, demean, linf_norms


#: Drops are differences of trial fractions, so an exact tie with ``max_drop`` can come out 4e-17 above it in floats
#: (0.9 - 0.6): a drop exceeds the threshold only by more than this, far below one trial in a million.
DROP_TOL = 1e-9


def exceeds(drop: float, max_drop: float) -> bool:
    """Whether an accuracy drop fails the gate ``max_drop`` (an exact tie passes, float round-off included); the
    one comparison of `audit` and `assert_robust`."""
    return drop > max_drop + DROP_TOL


def rca(y_true, y_pred) -> float:
    """Raw classification accuracy."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def bca(y_true, y_pred) -> float:
    """Balanced classification accuracy: the mean of per-class recalls (over classes present in ``y_true``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def signal_energy(X, sfreq=None) -> dict:
    """Per trial of the clean ``X``: the demeaned energy (``total``) and, with ``sfreq``, its energy per band of
    `attacks.budget.BANDS` (``bands``, shape (n_trials, n_bands)). What `perturbation_stats` pools; a cell computes
    it once for all its rows."""
    D = demean(X)
    return {"total": (D ** 2).reshape(len(D), -1).sum(axis=1),
            "bands": None if sfreq is None else band_energy(D, sfreq), "sfreq": sfreq}


def perturbation_stats(X, X_adv, scale, *, attacked=None, fooled=None, sfreq=None, signal=None) -> dict:
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
    signal : dict, default=None
        `signal_energy(X, sfreq)`, when the caller reuses it for several ``X_adv`` of the same ``X``.

    Returns max |delta| (microvolts and budget units), the mean L2 norm (microvolts) over the changed trials and the
    largest L2 norm in budget units divided by ``sqrt(n_chans * n_times)`` (``l2_rel``: an L2 attack at epsilon
    stays within its radius `attacks.budget.l2_budget` exactly when ``l2_rel <= epsilon``), the
    number of changed trials, and the pooled SNRs in dB (inf where nothing was changed): ``10 log10`` of the summed
    demeaned signal energy over the summed perturbation energy, the same sums as `attacks.budget.pooled_snr_db` and
    `attacks.budget.band_snr_db`.
    """
    n = len(X)
    changed = (X_adv != X).reshape(n, -1).any(axis=1)
    d = X_adv[changed].astype(np.float64) - X[changed]  # unchanged trials add signal and no perturbation
    attacked = np.ones(n, bool) if attacked is None else _mask(attacked, n)
    if signal is None or signal["sfreq"] != sfreq or len(signal["total"]) != n:
        signal = signal_energy(X, sfreq)
    stats = {"linf_uv": 0.0, "linf_rel": 0.0, "l2_uv": 0.0, "l2_rel": 0.0, "n_perturbed": int(changed.sum())}
    energy = np.zeros(n)
    if changed.any():
        energy[changed] = (d ** 2).reshape(len(d), -1).sum(axis=1)
        rel = d / np.asarray(scale, dtype=np.float64)[None, :, None]
        stats.update(linf_uv=float(linf_norms(d).max()), linf_rel=float(np.abs(rel).max()),
                     l2_uv=float(np.sqrt(energy[changed]).mean()),
                     l2_rel=float(np.sqrt((rel ** 2).reshape(len(rel), -1).sum(axis=1)).max()
                                  / np.sqrt(rel[0].size)))

    def pooled(sel):
        return _ratio_db(float(signal["total"][sel].sum()), float(energy[sel].sum())) if sel.any() else float("inf")

    stats["snr_db"] = pooled(attacked)
    sel = attacked if fooled is None else _mask(fooled, n)
    stats["snr_fooled_db"] = pooled(sel) if sel.any() else None
    if sfreq is not None:
        pd = np.zeros((n, len(BANDS)))
        hit = changed & attacked
        if hit.any():
            pd[hit] = band_energy(d[attacked[changed]], sfreq)
        px = signal["bands"][attacked].sum(axis=0)
        for j, band in enumerate(BANDS):
            value = None
            if not np.isnan(px[j]) and attacked.any():
                value = _ratio_db(float(px[j]), float(pd[attacked, j].sum()))
            stats[f"snr_{band}_db"] = value
    return stats


def _mask(sel, n) -> np.ndarray:
    sel = np.asarray(sel)
    if sel.dtype == bool:
        return sel
    mask = np.zeros(n, bool)
    mask[sel.astype(int)] = True
    return mask
