"""Checks for attack parameters and call arguments: one line, naming the parameter, the allowed range and the value.

Attacks validate every parameter when they are built (``LinfPGD(steps=0)`` fails there, not on the first call)
and store the value as given, so ``repr``, cloning and parameter grids keep working. ``bool`` is refused where a
number is expected: ``True`` would silently mean 1.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..data._checks import ConfigError, DataError


class ConfigTypeError(ConfigError, TypeError):
    """A parameter of the wrong type: a TypeError, and a ConfigError so that config and CLI callers catch it."""


class DataTypeError(DataError, TypeError):
    """Data of the wrong type (labels as strings, X of objects): a TypeError and a DataError."""


def _owner(owner: str, name: str) -> str:
    return f"{owner} {name}" if owner else name


def check_int(owner: str, name: str, value, *, low: int = 1, why: str = ""):
    """``value`` if it is an integer (not bool) >= ``low``; else TypeError / ConfigError naming it."""
    what = _owner(owner, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ConfigTypeError(f"{what} must be an integer >= {low}, got {type(value).__name__} {value!r}.")
    if value < low:
        raise ConfigError(f"{what} must be an integer >= {low}{why}, got {value!r}.")
    return int(value) if isinstance(value, np.integer) else value


def check_real(owner: str, name: str, value, *, low: float = 0.0, high: float = math.inf,
               low_open: bool = True, high_open: bool = False, why: str = ""):
    """``value`` if it is a finite real number (not bool) in the interval; else TypeError / ConfigError naming it."""
    what = _owner(owner, name)
    interval = (f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open or math.isinf(high) else ']'}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{what} must be a number in {interval}, got {type(value).__name__} {value!r}.")
    v = float(value)
    if not math.isfinite(v) or (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
        raise ConfigError(f"{what} must be a finite number in {interval}{why}, got {value!r}.")
    return float(value) if isinstance(value, np.floating) else value


def check_bool(owner: str, name: str, value):
    """``value`` if it is a bool; a string such as ``"False"`` would otherwise be truthy."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigTypeError(f"{_owner(owner, name)} must be True or False, got {type(value).__name__} {value!r}.")
    return bool(value)


def check_seed(value, *, name: str = "random_state"):
    """An int >= 0, a numpy Generator or None (what `data._checks.check_random_state` turns into a Generator)."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ConfigTypeError(f"{name} must be an int >= 0, a numpy Generator or None, got {type(value).__name__} "
                              f"{value!r}.")
    if value < 0:
        raise ConfigError(f"{name} must be an int >= 0, a numpy Generator or None, got {value!r}.")
    return value


def check_class_labels(y, n_trials: int, *, name: str = "y") -> np.ndarray:
    """Integer class indices, one per trial, >= 0 (floats only when they are whole numbers); int64."""
    y = np.asarray(y)
    if y.shape != (n_trials,):
        raise DataError(f"{name} must have shape ({n_trials},) (one class index per trial), got shape {y.shape}.")
    if y.dtype.kind not in "biuf":
        raise DataTypeError(f"{name} must hold integer class indices, got dtype {y.dtype} (first value {y[0].item()!r}); "
                        "map class names to indices first.")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise DataError(f"{name} must hold integer class indices, got {y[bad][0].item()!r} (trial "
                            f"{int(np.flatnonzero(bad)[0])}).")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"{name} must hold class indices >= 0, got {int(y.min())} (trial "
                        f"{int(np.argmin(y))}).")
    return y


def check_scale(scale, n_chans: int) -> np.ndarray:
    """Per-channel budget unit: ``n_chans`` positive, finite numbers (microvolts)."""
    what = f"scale must be {n_chans} positive values (one per channel, finite, in microvolts)"
    try:
        s = np.asarray(scale, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}, got {scale!r}.") from None
    if s.shape != (n_chans,):
        raise ConfigError(f"{what}, got shape {s.shape}.")
    bad = ~np.isfinite(s) | (s <= 0)
    if bad.any():
        raise ConfigError(f"{what}, got {s[bad][0].item()!r} for channel {int(np.flatnonzero(bad)[0])}.")
    return s


def check_X_numeric(X, *, name: str = "X") -> np.ndarray:
    """Refuse arrays of strings, objects or complex numbers before `data._checks.check_X` converts them."""
    try:
        X = np.asarray(X)
    except ValueError as err:  # ragged nested lists
        raise DataError(f"{name} must be an array of shape (n_trials, n_chans, n_times), got a ragged "
                        f"{type(X).__name__} ({err}).") from None
    if X.dtype.kind not in "iuf":  # booleans (X > 0 by mistake) are no microvolts either
        raise DataTypeError(f"{name} must hold real numbers (microvolts), got dtype {X.dtype}.")
    return X
