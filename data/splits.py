"""Stratified, disjoint splits of `EEGData` (validation sets, attacker seed sets)."""

from __future__ import annotations

import numpy as np

from ._checks import ConfigError, DataError, check_random_state
from .containers import EEGData


def train_val_split(data: EEGData, val_fraction=0.2, random_state=0, stratify=True):
    """Split trials into disjoint training and validation parts.

    Parameters
    ----------
    data : EEGData
        Trials to split.
    val_fraction : float, default=0.2
        Share of the trials that go to validation, in (0, 1). With ``stratify`` it is applied per class,
        rounded, and every class keeps at least one trial on each side.
    random_state : int | np.random.Generator | None, default=0
        Seed of the draw.
    stratify : bool, default=True
        Keep the class proportions in both parts.

    Returns
    -------
    train, val : EEGData
        Disjoint subsets in the original trial order.

    Raises
    ------
    ConfigError
        ``val_fraction`` is outside (0, 1).
    DataError
        A class (or, unstratified, the data) has fewer than two trials.
    """
    _check_data(data)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}.")
    rng = check_random_state(random_state)
    groups = _class_groups(data) if stratify else {"all trials": np.arange(data.n_trials)}
    val = []
    for name, idx in groups.items():
        if len(idx) < 2:
            raise DataError(f"class {name!r} has {len(idx)} trial(s); a split needs at least 2 per class.")
        n_val = int(np.clip(round(val_fraction * len(idx)), 1, len(idx) - 1))
        val.append(rng.permutation(idx)[:n_val])
    val_part, train_part = _two_parts(data, np.concatenate(val))
    return train_part, val_part


def split_disjoint(data: EEGData, n_first: int, random_state=0):
    """Draw ``n_first`` trials, stratified by class, and return them and the rest.

    Used to take an attacker's seed set out of evaluation data so the two never overlap. Each class gets a
    share of ``n_first`` proportional to its size (largest-remainder rounding, so the shares add up exactly).

    Parameters
    ----------
    data : EEGData
        Trials to split.
    n_first : int
        Number of trials in the first part, in ``[1, n_trials - 1]``.
    random_state : int | np.random.Generator | None, default=0
        Seed of the draw.

    Returns
    -------
    first, rest : EEGData
        Disjoint subsets in the original trial order; ``first`` holds ``n_first`` trials.
    """
    first, _ = disjoint_indices(data, n_first, random_state)
    return _two_parts(data, first)


def disjoint_indices(data: EEGData, n_first: int, random_state=0):
    """The draw of `split_disjoint` as sorted index arrays ``(first, rest)`` into ``data``."""
    _check_data(data)
    if isinstance(n_first, bool) or not isinstance(n_first, (int, np.integer)) or not 1 <= n_first < data.n_trials:
        raise ConfigError(
            f"n_first must be an int in [1, {data.n_trials - 1}] for {data.n_trials} trials, got {n_first!r}."
        )
    rng = check_random_state(random_state)
    groups = _class_groups(data)
    counts = np.array([len(idx) for idx in groups.values()])
    quotas = n_first * counts / counts.sum()
    shares = np.floor(quotas).astype(int)
    extra = np.argsort(-(quotas - shares), kind="stable")[: n_first - shares.sum()]
    shares[extra] += 1
    first = [rng.permutation(idx)[:k] for idx, k in zip(groups.values(), shares, strict=True)]
    mask = np.zeros(data.n_trials, bool)
    mask[np.concatenate(first)] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def _check_data(data):
    if not isinstance(data, EEGData):
        raise TypeError(f"data must be an EEGData, got {type(data).__name__}; use data.epochs_to_data(epochs).")


def _class_groups(data: EEGData) -> dict:
    """Trial indices of each class present, keyed by class name."""
    return {data.classes[c]: np.flatnonzero(data.y == c) for c in np.unique(data.y)}


def _two_parts(data: EEGData, chosen: np.ndarray):
    """The chosen trials and the others, each in the original order."""
    mask = np.zeros(data.n_trials, bool)
    mask[chosen] = True
    return data.subset(mask), data.subset(~mask)
