"""`EEGData`: the array form of a set of epochs that models and attacks work on, with one metadata row per trial."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._checks import DataError, check_X

#: Metadata columns every `EEGData` has, with their defaults (``is_synthetic`` comes from the field).
METADATA_DEFAULTS = {"subject": "1", "session": "0", "run": "0"}
_HASHED_COLUMNS = ("subject", "session", "run")


@dataclass(frozen=True, eq=False)
class EEGData:
    """Epochs as arrays, in microvolts, with one metadata row per trial.

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
    is_synthetic : ndarray of shape (n_trials,), bool, default=None
        True for trials that a generator made (never for real recordings). If None, it is taken from the
        ``is_synthetic`` column of ``metadata`` when there is one, else all False. When given, it wins over that
        column, which is overwritten with it.
    metadata : pandas.DataFrame of n_trials rows, default=None
        Per-trial information, as MOABB's ``get_data`` returns it. It is copied, gets a ``RangeIndex``, and always
        holds the columns ``subject``, ``session`` and ``run`` (str; defaults ``"1"``, ``"0"``, ``"0"``) and
        ``is_synthetic`` (bool, equal to the field). Other columns (``split``, ``source``, ...) are kept.
        Treat it as read-only: `subset`, `relabel` and `concat_data` make new frames.
    ch_pos : dict of str to (x, y, z) or None, default=None
        Sensor positions in metres (head frame) from the recording's montage, for the report's topomaps; None
        when the recording has none.
    """

    X: np.ndarray
    y: np.ndarray
    sfreq: float
    ch_names: tuple
    classes: tuple
    is_synthetic: np.ndarray = field(default=None)
    metadata: pd.DataFrame = field(default=None)
    ch_pos: dict = field(default=None)

    def __post_init__(self):
        X = check_X(self.X).astype(np.float32, copy=False)
        y = np.asarray(self.y).astype(np.int64, copy=False)
        if y.shape != (X.shape[0],):
            raise DataError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
        if len(self.ch_names) != X.shape[1]:
            raise DataError(f"ch_names has {len(self.ch_names)} names but X has {X.shape[1]} channels.")
        if y.min() < 0 or y.max() >= len(self.classes):
            raise DataError(f"labels must lie in [0, {len(self.classes) - 1}] for classes {self.classes}, "
                            f"got {sorted(set(y.tolist()))}.")
        if not self.sfreq or self.sfreq <= 0:
            raise DataError(f"sfreq must be positive, got {self.sfreq!r}.")
        metadata = _checked_metadata(self.metadata, X.shape[0])
        if self.is_synthetic is not None:
            syn = np.asarray(self.is_synthetic, bool)
            if syn.shape != (X.shape[0],):
                raise DataError(f"is_synthetic must have shape ({X.shape[0]},), got {syn.shape}.")
        elif "is_synthetic" in metadata:
            syn = metadata["is_synthetic"].to_numpy(bool)
        else:
            syn = np.zeros(X.shape[0], bool)
        metadata["is_synthetic"] = syn
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "sfreq", float(self.sfreq))
        object.__setattr__(self, "ch_names", tuple(self.ch_names))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "is_synthetic", syn)
        object.__setattr__(self, "metadata", metadata)

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

    @property
    def subjects(self) -> tuple:
        """Subjects of the trials (str), each once, in order of first appearance."""
        return tuple(pd.unique(self.metadata["subject"]))

    def sessions_of(self, subject) -> tuple:
        """Sessions (str) of ``subject``'s trials, each once, in order of first appearance."""
        subject = str(subject)
        mask = (self.metadata["subject"] == subject).to_numpy()
        if not mask.any():
            raise DataError(f"subject {subject!r} is not in the data; subjects are {list(self.subjects)}.")
        return tuple(pd.unique(self.metadata["session"][mask]))

    def subset(self, idx) -> EEGData:
        """Return the trials selected by ``idx`` (indices or a boolean mask), metadata rows included."""
        idx = np.asarray(idx)
        return EEGData(self.X[idx], self.y[idx], self.sfreq, self.ch_names, self.classes, self.is_synthetic[idx],
                       self.metadata.iloc[idx].reset_index(drop=True), self.ch_pos)

    def relabel(self, classes) -> EEGData:
        """Return the data with class list ``classes``, each trial's label remapped by class name.

        Parameters
        ----------
        classes : sequence of str
            The new class order (for example a model's ``classes``). It must hold the name of every class that
            has trials here; it may hold more (a class with no trials here only widens the label range).

        Returns
        -------
        data : EEGData
            Same trials, ``classes == tuple(classes)`` and ``classes[y[i]]`` unchanged for every trial; ``self``
            when the classes already match.

        Raises
        ------
        DataError
            A class with trials here is not in ``classes``, or ``classes`` repeats a name.
        """
        classes = tuple(classes)
        if classes == self.classes:
            return self
        if len(set(classes)) != len(classes):
            raise DataError(f"classes must not repeat a name, got {classes}.")
        present = [self.classes[k] for k in np.unique(self.y)]
        missing = [name for name in present if name not in classes]
        if missing:
            raise DataError(f"the data's classes {self.classes} are not all in {classes} (missing {missing}); "
                            "the class names must match, e.g. those the model was trained on.")
        new_index = np.array([classes.index(name) if name in classes else -1 for name in self.classes])
        return EEGData(self.X, new_index[self.y], self.sfreq, self.ch_names, classes, self.is_synthetic,
                       self.metadata, self.ch_pos)

    def reorder_channels(self, ch_names) -> EEGData:
        """Return the data with its channels in the order ``ch_names`` (the same names, matched by name).

        Raises
        ------
        DataError
            ``ch_names`` is not a reordering of ``self.ch_names``.
        """
        ch_names = tuple(ch_names)
        if ch_names == self.ch_names:
            return self
        if not same_channels(ch_names, self.ch_names):
            raise DataError(f"cannot reorder channels {list(self.ch_names)} to {list(ch_names)}: not the same names.")
        order = [self.ch_names.index(name) for name in ch_names]
        return EEGData(self.X[:, order], self.y, self.sfreq, ch_names, self.classes, self.is_synthetic,
                       self.metadata, self.ch_pos)

    def data_hash(self) -> str:
        """SHA-256 of X, y, channels, sfreq, classes and the metadata columns subject, session, run, is_synthetic.

        It identifies the data a model was trained on; other metadata columns (``source``, ``split``, ...) do not
        change it.
        """
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        h.update(repr((self.sfreq, self.ch_names, self.classes)).encode())
        for column in _HASHED_COLUMNS:
            h.update("\x1f".join(self.metadata[column]).encode() + b"\x1e")
        h.update(np.ascontiguousarray(self.is_synthetic).tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"EEGData(n_trials={self.n_trials}, n_chans={self.n_chans}, n_times={self.n_times}, "
                f"sfreq={self.sfreq:g}, classes={self.classes}, n_subjects={len(self.subjects)}, "
                f"n_synthetic={int(self.is_synthetic.sum())})")


def concat_data(datas) -> EEGData:
    """Concatenate `EEGData` objects trial-wise, unifying their classes by name.

    Parameters
    ----------
    datas : sequence of EEGData
        At least one; all with the same channels, sampling frequency and window length. Channels listed in
        another order are reordered by name to the first item's order, with a warning.

    Returns
    -------
    data : EEGData
        The trials of each item in turn, metadata rows included (columns missing from an item are NaN there).
        Classes are the first item's, then the new names of the later items in their order; labels are remapped.

    Raises
    ------
    DataError
        An item's channels, sfreq or n_times differ from the first item's (the message names the item's subject
        and ``source`` file when it has one, and both values).
    """
    datas = list(datas)
    if not datas:
        raise DataError("concat_data needs at least one EEGData, got none.")
    for i, item in enumerate(datas):
        if not isinstance(item, EEGData):
            raise TypeError(f"datas[{i}] must be an EEGData, got {type(item).__name__}.")
    first = datas[0]
    classes = list(first.classes)
    for i, item in enumerate(datas[1:], start=1):
        if item.ch_names != first.ch_names and same_channels(item.ch_names, first.ch_names):
            warnings.warn(f"{_describe(item)} lists the channels of {_describe(first)} in another order; its "
                          "channels are reordered by name to match.", stacklevel=2)
            datas[i] = item = item.reorder_channels(first.ch_names)
        for attr in ("ch_names", "sfreq", "n_times"):
            if getattr(item, attr) != getattr(first, attr):
                raise DataError(f"{_describe(item)} has {attr} {getattr(item, attr)!r} but {_describe(first)} has "
                                f"{getattr(first, attr)!r}; data to combine must share channels, sfreq and window.")
        _check_same_start(first, item)
        classes += [name for name in item.classes if name not in classes]
    if len(datas) == 1:
        return first
    parts = [item.relabel(classes) for item in datas]
    return EEGData(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]), first.sfreq,
                   first.ch_names, tuple(classes), np.concatenate([p.is_synthetic for p in parts]),
                   pd.concat([p.metadata for p in parts], ignore_index=True), first.ch_pos)


def same_channels(a, b) -> bool:
    """The same channel names, each once, in any order (`EEGData.reorder_channels` can map one onto the other)."""
    return len(a) == len(b) == len(set(a)) and set(a) == set(b)


def _check_same_start(first: EEGData, item: EEGData) -> None:
    """Refuse to combine windows that start at different times relative to their events (metadata ``epoch_tmin``,
    set by `epochs_to_data`): same length and rate, but a model would read one window's 0.5 s as another's 0 s."""
    if "epoch_tmin" not in first.metadata or "epoch_tmin" not in item.metadata:
        return
    a, b = first.metadata["epoch_tmin"].to_numpy(float), item.metadata["epoch_tmin"].to_numpy(float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) and len(b) and abs(float(np.median(a)) - float(np.median(b))) > 0.5 / first.sfreq:
        raise DataError(f"{_describe(item)} has windows starting at {float(np.median(b)):g} s relative to its events "
                        f"but {_describe(first)} at {float(np.median(a)):g} s; data to combine must share the window "
                        "(cut or crop every file with the same tmin and tmax).")


def _checked_metadata(metadata, n_trials: int) -> pd.DataFrame:
    """A copy of ``metadata`` (or a new frame) with a RangeIndex and the str columns subject, session, run."""
    if metadata is None:
        return pd.DataFrame({column: [default] * n_trials for column, default in METADATA_DEFAULTS.items()})
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"metadata must be a pandas.DataFrame or None, got {type(metadata).__name__}.")
    if len(metadata) != n_trials:
        raise DataError(f"metadata must have one row per trial ({n_trials}), got {len(metadata)} rows.")
    metadata = metadata.reset_index(drop=True)
    for column, default in METADATA_DEFAULTS.items():
        if column not in metadata:
            metadata[column] = default
            continue
        missing = np.flatnonzero(metadata[column].isna().to_numpy())
        if len(missing):
            raise DataError(f"metadata column {column!r} has {len(missing)} missing value(s) (first in row "
                            f"{missing[0]}); fill them, e.g. metadata[{column!r}].fillna({default!r}).")
        if not isinstance(metadata[column].dtype, pd.StringDtype):
            metadata[column] = metadata[column].astype(str)
    return metadata


def _describe(data: EEGData) -> str:
    subjects = list(data.subjects)
    who = f"subject {subjects[0]!r}" if len(subjects) == 1 else f"subjects {subjects}"
    if "source" in data.metadata:
        sources = list(pd.unique(data.metadata["source"].astype(str)))
        who += f" (file {sources[0]!r})" if len(sources) == 1 else f" (files {sources})"
    return who
