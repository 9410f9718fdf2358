"""`EEGData`: the array form of a set of epochs that models and attacks work on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ._checks import DataError, check_X


@dataclass(frozen=True, eq=False)
class EEGData:
    """Epochs as arrays, in microvolts.

    Parameters
    ----------
    X : ndarray of shape (n_trials, n_chans, n_times), float32
        EEG in microvolts.
    y : ndarray of shape (n_trials,), int64
        Class index of each trial; ``classes[y[i]]`` is its name.
    sfreq : float
        Sampling frequency in Hz.
    ch_names : tuple of str
        Channel names, in the order of axis 1 of ``X``.
    classes : tuple of str
        Class names; the index of a name is its label.
    is_synthetic : ndarray of shape (n_trials,), bool, default=all False
        True for trials that a generator made (never for real recordings).
    """

    X: np.ndarray
    y: np.ndarray
    sfreq: float
    ch_names: tuple
    classes: tuple
    is_synthetic: np.ndarray = field(default=None)

    def __post_init__(self):
        X = check_X(self.X).astype(np.float32, copy=False)
        y = np.asarray(self.y).astype(np.int64, copy=False)
        if y.shape != (X.shape[0],):
            raise DataError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
        if len(self.ch_names) != X.shape[1]:
            raise DataError(f"ch_names has {len(self.ch_names)} names but X has {X.shape[1]} channels.")
        if y.min() < 0 or y.max() >= len(self.classes):
            raise DataError(f"labels must lie in [0, {len(self.classes) - 1}] for classes {self.classes}, got {sorted(set(y.tolist()))}.")
        if not self.sfreq or self.sfreq <= 0:
            raise DataError(f"sfreq must be positive, got {self.sfreq!r}.")
        syn = np.zeros(X.shape[0], bool) if self.is_synthetic is None else np.asarray(self.is_synthetic, bool)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "sfreq", float(self.sfreq))
        object.__setattr__(self, "ch_names", tuple(self.ch_names))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "is_synthetic", syn)

    @property
    def n_trials(self) -> int:
        return self.X.shape[0]

    @property
    def n_chans(self) -> int:
        return self.X.shape[1]

    @property
    def n_times(self) -> int:
        return self.X.shape[2]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def subset(self, idx) -> "EEGData":
        """Return the trials selected by ``idx`` (indices or a boolean mask)."""
        idx = np.asarray(idx)
        return EEGData(self.X[idx], self.y[idx], self.sfreq, self.ch_names, self.classes, self.is_synthetic[idx])

    def data_hash(self) -> str:
        """SHA-256 of X, y, channels and sfreq: identifies the data a model was trained on."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        h.update(repr((self.sfreq, self.ch_names, self.classes)).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"EEGData(n_trials={self.n_trials}, n_chans={self.n_chans}, n_times={self.n_times}, "
                f"sfreq={self.sfreq:g}, classes={self.classes}, n_synthetic={int(self.is_synthetic.sum())})")
