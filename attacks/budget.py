"""Perturbation budgets: epsilon units, per-channel scale, search bounds, norms and SNR.

Every attack works in *budget space* ``s = x / scale``, where ``scale`` holds one value per channel in
microvolts. With ``unit="rel"`` (the default) ``scale`` is each channel's standard deviation of the clean
evaluation data, so ``epsilon=0.05`` allows 5 % of a channel's std on every sample of that channel: the
convention of recent EEG robustness benchmarks. Because eegrobust models standardize their input per channel
as their first layer, this is a scalar L-inf budget in the space the network sees. With ``unit="uV"``
``scale`` is 1 and ``epsilon`` is in microvolts.

L2 attacks use the same grid: an L2 budget ``epsilon`` allows ``||delta / scale||_2 <= epsilon * sqrt(n_chans *
n_times)``, the energy of an L-inf perturbation of size ``epsilon`` on every sample, so the same epsilon means
about the same SNR for L-inf and L2 attacks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..data._checks import ConfigError, check_option

BUDGET_UNITS = ("rel", "uV")
DEFAULT_EPSILONS = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)


def check_epsilons(epsilons) -> tuple[float, ...]:
    """Validate a sequence of budgets: non-empty, numeric, finite and >= 0.

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
    return values


def channel_scale(X: np.ndarray, unit: str = "rel") -> np.ndarray:
    """Per-channel budget unit in microvolts, shape (n_chans,).

    Parameters
    ----------
    X : ndarray of shape (n_trials, n_chans, n_times)
        Clean EEG in microvolts (the whole evaluation set, so every model and attack shares one budget).
    unit : {"rel", "uV"}, default="rel"
        ``"rel"``: each channel's standard deviation over trials and time; ``"uV"``: 1 (absolute microvolts).
    """
    check_option("budget unit", unit, BUDGET_UNITS)
    if unit == "uV":
        return np.ones(X.shape[1], dtype=np.float64)
    std = X.astype(np.float64).transpose(1, 0, 2).reshape(X.shape[1], -1).std(axis=1)
    std[std == 0] = 1.0
    return std


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


def snr_db(X: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Signal-to-perturbation ratio per trial, ``10 log10(sum x^2 / sum delta^2)``; inf where delta is 0."""
    sig = (X.astype(np.float64) ** 2).reshape(len(X), -1).sum(axis=1)
    pert = (delta.astype(np.float64) ** 2).reshape(len(X), -1).sum(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(sig / pert)


def l2_budget(epsilon: float, n_chans: int, n_times: int) -> float:
    """L2 radius in budget space that matches an L-inf ``epsilon`` in energy (see module docstring)."""
    return epsilon * math.sqrt(n_chans * n_times)
