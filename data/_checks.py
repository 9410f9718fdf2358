"""Validation helpers and the project's error classes (bottom layer: every package imports these)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


class EEGRobustError(Exception):
    """Base class of every error eegrobust raises on purpose."""


class DataError(EEGRobustError, ValueError):
    """Input EEG (files, epochs, arrays) that cannot be used as given."""


class ModelFileError(EEGRobustError, ValueError):
    """A model file or bundle that is missing, malformed, unsafe or does not fit."""


class ConfigError(EEGRobustError, ValueError):
    """An option or configuration value outside what is allowed."""


class NoVerdictError(EEGRobustError, ValueError):
    """Nothing could be measured (no attack planned, or nothing to attack): no verdict is possible (CLI exit 3)."""


def first_repeat(values):
    """The first item of ``values`` that an earlier item equals, or None: lists of budgets, seeds, models and arms
    must not name one item twice (it would be collapsed silently, or counted twice)."""
    seen = []
    for value in values:
        if value in seen:
            return value
        seen.append(value)
    return None


def check_option(name: str, value, allowed: Iterable, *, error=ConfigError):
    """Return ``value`` if it is in ``allowed``; else raise naming it, with a "did you mean"."""
    allowed = list(allowed)
    if value in allowed:
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise error(f"{name} must be one of {sorted(map(str, allowed))}, got {value!r}.{hint}")


def check_random_state(random_state) -> np.random.Generator:
    """Turn None, an int or a Generator into a ``np.random.Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be an int, a numpy Generator or None, got {type(random_state).__name__}.")


def check_X(X, *, name: str = "X") -> np.ndarray:
    """Check an EEG array of shape (n_trials, n_chans, n_times): 3-D, non-empty, finite."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"{name} must have shape (n_trials, n_chans, n_times), got shape {X.shape}.")
    if X.shape[0] == 0:
        raise DataError(f"{name} holds zero epochs (shape {X.shape}); pass at least one trial per class.")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        trial = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"{name} contains {int(bad.sum())} NaN/Inf values (first in trial {trial}); "
            "drop or interpolate those epochs before loading (in a raw recording, annotate the segment as BAD_ "
            "so that no epoch is cut from it)."
        )
    return X


def check_microvolts(X: np.ndarray, *, name: str = "X") -> None:
    """Raise if an array that should hold microvolts looks like volts (or nanovolts / raw ADC)."""
    scale = float(np.median(np.std(X, axis=-1)))
    if scale == 0.0:
        raise DataError(f"{name} is constant (zero standard deviation in every channel); nothing to decode.")
    if scale < 1e-2:
        raise DataError(
            f"{name} has a median channel std of {scale:.3g}, which looks like volts, not microvolts; "
            "multiply by 1e6 (or load it through data.load_epochs, which converts MNE's volts)."
        )
    if scale > 1e5:
        raise DataError(
            f"{name} has a median channel std of {scale:.3g}, far above EEG in microvolts; "
            "is it nanovolts or raw ADC counts? Rescale to microvolts."
        )


def check_labels(y, n_trials: int, *, name: str = "y") -> np.ndarray:
    """Check integer labels: one per trial, at least two classes."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_trials:
        raise DataError(f"{name} must have shape ({n_trials},), got shape {y.shape}.")
    n_classes = np.unique(y).size
    if n_classes < 2:
        raise DataError(
            f"{name} holds {n_classes} class(es) {sorted(np.unique(y).tolist())}; a classifier needs at least two. "
            "Check the event_id / events you selected."
        )
    return y.astype(np.int64)
