"""Perturbation budgets: epsilon units, per-channel scale, search bounds, norms and SNR.

Every attack works in *budget space* ``s = x / scale``, where ``scale`` holds one value per channel in
microvolts. With ``unit="rel"`` (the default) ``scale`` is each channel's standard deviation of the clean
evaluation data **after removing each trial's mean on that channel** (`demean`), so ``epsilon=0.05`` allows 5 %
of a channel's (demeaned) std on every sample of that channel: the convention of recent EEG robustness benchmarks,
without the inflation that DC offsets cause (on raw Emotiv epochs, offsets of ~4200 uV made the std over trials x
time, and so every budget, many times larger than the signal's own fluctuation). With ``unit="uV"`` ``scale`` is 1
and ``epsilon`` is in microvolts.

L2 attacks use the same grid: an L2 budget ``epsilon`` allows ``||delta / scale||_2 <= epsilon * sqrt(n_chans *
n_times)``, the energy of an L-inf perturbation of size ``epsilon`` on every sample, so the same epsilon means
about the same SNR for L-inf and L2 attacks.

SNR is ``10 log10(sum x_d^2 / sum delta^2)`` with ``x_d`` the demeaned clean trial and ``delta`` the perturbation
as applied (its own mean included: the model sees it). `pooled_snr_db` sums both over a set of trials (a trial
left unchanged adds signal and no perturbation), so an L-inf sign perturbation of size ``epsilon`` on every sample
gives ``-20 log10(epsilon)`` dB in unit "rel". `band_snr_db` does the same per EEG band (`BANDS`) from the
trials' spectra, so a reader sees where the perturbation's energy went.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..data._checks import ConfigError, check_option, first_repeat
from ..data.bands import BANDS  # re-exported: attacks.budget.BANDS

BUDGET_UNITS = ("rel", "uV")
DEFAULT_EPSILONS = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)
#: Largest budget accepted (in any unit): beyond it float32 budget-space arithmetic overflows (L2 radii, bounds).
MAX_EPSILON = 1e6


def check_epsilons(epsilons, *, unique: bool = False, name: str = "epsilons") -> tuple[float, ...]:
    """Validate a sequence of budgets: non-empty, numeric, finite and >= 0 (with ``unique``: no budget twice, as a
    study's grid must not hold two rows of one cell that count as two budgets).

    Numeric strings inside a sequence are accepted (the CLI's ``--eps 0.05,0.1``); a bare string, a bool or an
    array of strings is not.
    """
    example = "Example: epsilons=(0.05, 0.1)."
    if isinstance(epsilons, (numbers.Real, np.ndarray)) and np.ndim(epsilons) == 0:
        epsilons = (epsilons,)
    if isinstance(epsilons, (str, bytes)) or (isinstance(epsilons, np.ndarray) and epsilons.dtype.kind not in "iuf"):
        raise ConfigError(f"epsilons must be numbers, got {epsilons!r}. {example}")
    try:
        items = tuple(np.ravel(epsilons)) if isinstance(epsilons, np.ndarray) else tuple(epsilons)
        if any(isinstance(e, (bool, np.bool_)) for e in items):
            raise TypeError
        values = tuple(float(e) for e in items)
    except (TypeError, ValueError):
        raise ConfigError(f"epsilons must be numbers, got {epsilons!r}. {example}") from None
    if not values:
        raise ConfigError("epsilons must be non-empty, got (). Example: epsilons=(0.05, 0.1).")
    bad = [e for e in values if not math.isfinite(e) or e < 0]
    if bad:
        raise ConfigError(f"epsilons must be finite and >= 0, got {bad[0]!r} in {values!r}.")
    huge = [e for e in values if e > MAX_EPSILON]
    if huge:
        raise ConfigError(f"epsilons must be at most {MAX_EPSILON:g}, got {huge[0]!r}: a budget of a million channel "
                          "stds (or microvolts) is no EEG perturbation, and larger ones overflow float32.")
    if unique:
        twice = first_repeat(values)
        if twice is not None:
            raise ConfigError(f"{name} lists the budget {twice:g} more than once ({', '.join(map(str, values))}); "
                              "give each budget once.")
    return values


def channel_scale(X: np.ndarray, unit: str = "rel") -> np.ndarray:
    """Per-channel budget unit in microvolts, shape (n_chans,).

    Parameters
    ----------
    X : ndarray of shape (n_trials, n_chans, n_times)
        Clean EEG in microvolts (the whole evaluation set, so every model and attack shares one budget).
    unit : {"rel", "uV"}, default="rel"
        ``"rel"``: each channel's standard deviation over trials and time after removing each trial's mean on
        that channel (offsets do not count as signal); ``"uV"``: 1 (absolute microvolts).
    """
    check_option("budget unit", unit, BUDGET_UNITS)
    if unit == "uV":
        return np.ones(X.shape[1], dtype=np.float64)
    std = demean(X).transpose(1, 0, 2).reshape(X.shape[1], -1).std(axis=1)
    std[~(std > 0)] = 1.0  # a flat channel (or one sample per trial): microvolts
    return std


def demean(X: np.ndarray) -> np.ndarray:
    """``X`` (float64) minus each trial's mean on each channel: the signal without its DC offsets."""
    X = np.asarray(X, dtype=np.float64)
    return X - X.mean(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Bounds:
    """Box in budget space inside which attacks search: the data range padded by ``pad`` scale units.

    EEG has no natural [0, 1] range; foolbox needs one, and its decision-based attacks clip to [0, 1]. The
    attacks therefore map this box onto [0, 1] (``to_unit`` / ``from_unit``) before calling foolbox.
    """

    low: float
    high: float

    @classmethod
    def from_data(cls, S: np.ndarray, pad: float = 1.0) -> "Bounds":
        return cls(float(S.min()) - pad, float(S.max()) + pad)

    @property
    def span(self) -> float:
        return self.high - self.low


def linf_norms(delta_uv: np.ndarray) -> np.ndarray:
    """Max |delta| per trial, in microvolts."""
    return np.abs(delta_uv).reshape(len(delta_uv), -1).max(axis=1)


def l2_norms(delta_uv: np.ndarray) -> np.ndarray:
    """L2 norm of delta per trial, in microvolts."""
    return np.sqrt((delta_uv.astype(np.float64) ** 2).reshape(len(delta_uv), -1).sum(axis=1))




def _ratio_db(sig: float, pert: float) -> float:
    if pert <= 0:
        return float("inf")
    if sig <= 0:
        return float("-inf")
    return float(10 * np.log10(sig / pert))


def snr_db(X: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Signal-to-perturbation ratio per trial, ``10 log10(sum x_d^2 / sum delta^2)`` (``x_d`` demeaned); inf where
    delta is 0."""
    sig = (demean(X) ** 2).reshape(len(X), -1).sum(axis=1)
    pert = (delta.astype(np.float64) ** 2).reshape(len(X), -1).sum(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(sig / pert)


def pooled_snr_db(X: np.ndarray, delta: np.ndarray) -> float:
    """One SNR over a set of trials: ``10 log10(sum over trials of x_d^2 / sum of delta^2)``; inf if delta is 0."""
    if len(X) == 0:
        return float("inf")
    return _ratio_db(float((demean(X) ** 2).sum()), float((delta.astype(np.float64) ** 2).sum()))


def band_snr_db(X: np.ndarray, delta: np.ndarray, sfreq: float, bands: dict | None = None) -> dict:
    """Pooled SNR per frequency band: signal and perturbation energy in each band's FFT bins along time.

    Bands whose low edge is at or above the Nyquist frequency are None; the DC bin is in no band.
    """
    bands = BANDS if bands is None else bands
    if len(X) == 0:
        return {name: None for name in bands}
    px = band_energy(demean(X), sfreq, bands).sum(axis=0)
    pd = band_energy(delta, sfreq, bands).sum(axis=0)
    return {name: None if np.isnan(px[j]) else _ratio_db(float(px[j]), float(pd[j])) for j, name in enumerate(bands)}


def band_energy(A: np.ndarray, sfreq: float, bands: dict | None = None) -> np.ndarray:
    """Energy of each trial of ``A`` (n_trials, n_chans, n_times) in each band's FFT bins along time, summed over
    channels: shape (n_trials, n_bands), float64; NaN for a band with no bin below the Nyquist frequency. The DC bin
    is in no band. `band_snr_db` pools these over trials."""
    bands = BANDS if bands is None else bands
    freqs = np.fft.rfftfreq(A.shape[-1], 1.0 / sfreq)
    power = (np.abs(np.fft.rfft(np.asarray(A, dtype=np.float64), axis=-1)) ** 2).sum(axis=1)
    out = np.full((len(A), len(bands)), np.nan)
    for j, (low, high) in enumerate(bands.values()):
        sel = (freqs > 0) & (freqs >= low) & (freqs < high)
        if low < sfreq / 2 and sel.any():
            out[:, j] = power[:, sel].sum(axis=1)
    return out


def l2_budget(epsilon: float, n_chans: int, n_times: int) -> float:
    """L2 radius in budget space that matches an L-inf ``epsilon`` in energy (see module docstring)."""
    return epsilon * math.sqrt(n_chans * n_times)


def norm_as_epsilon(norms, norm: str, n_chans: int, n_times: int):
    """Budget-space norms (an attack's ``min_norm``) on the epsilon grid: L-inf as they are, L2 divided by
    ``sqrt(n_chans * n_times)`` (the inverse of `l2_budget`)."""
    return norms if norm == "linf" else norms / math.sqrt(n_chans * n_times)
