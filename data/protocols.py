"""Evaluation protocols as splitters of `EEGData`: official split, within-subject, cross-session, cross-subject.

Each protocol turns data into a list of `Fold` (train and test trial indices), as MOABB's WithinSession,
CrossSession and CrossSubject evaluations do. Rules that hold for all of them: a trial is never in both parts of
a fold; synthetic trials (``is_synthetic``) are never tested on; in cross-subject folds only the training
subjects' synthetic trials may be trained on; every subject must have real trials of at least two classes.
"""

from __future__ import annotations

import hashlib
import warnings

from dataclasses import dataclass

import numpy as np

from ._checks import ConfigError, DataError, check_option
from .containers import EEGData

PROTOCOLS = ("official", "within-subject", "cross-session", "cross-subject")


@dataclass(frozen=True, eq=False)
class Fold:
    """One train/test split of an `EEGData`.

    Parameters
    ----------
    name : str
        ``"official"``, ``"sub-01/official"``, ``"sub-01/fold-2"`` (1-based), ``"sub-01/ses-1"`` or ``"sub-03"``.
    subject : str
        The test subject, or ``"all"`` for an official split pooled over several subjects.
    session : str
        The test session (cross-session), else ``""``.
    train_idx, test_idx : ndarray of int
        Trial indices into the data, sorted; disjoint.
    """

    name: str
    subject: str
    session: str
    train_idx: np.ndarray
    test_idx: np.ndarray

    def __repr__(self) -> str:
        return f"Fold({self.name!r}, n_train={len(self.train_idx)}, n_test={len(self.test_idx)})"


def make_protocol(name: str, *, n_folds=5, random_state=0):
    """Build an evaluation protocol by name.

    Parameters
    ----------
    name : str
        One of `PROTOCOLS`: ``"official"`` (the given train/test split, per subject), ``"within-subject"``
        (stratified K-fold per subject), ``"cross-session"`` (leave one session out, per subject) or
        ``"cross-subject"`` (leave one subject out).
    n_folds : int, default=5
        Folds per subject for ``"within-subject"``, >= 2.
    random_state : int | None, default=0
        Seed of the within-subject shuffle.

    Returns
    -------
    protocol : object
        With ``name``, ``check(data)`` (raises on data the protocol cannot split) and ``split(data)`` (a list of
        `Fold`).
    """
    check_option("protocol", name, PROTOCOLS)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ConfigError(f"n_folds must be an int >= 2, got {n_folds!r}.")
    if random_state is not None and (isinstance(random_state, bool)
                                     or not isinstance(random_state, (int, np.integer))):
        raise ConfigError(f"random_state must be an int or None, got {random_state!r}.")
    return _CLASSES[name](n_folds=int(n_folds), random_state=random_state)


class _Protocol:
    """Shared checks; subclasses write ``_check(data)`` and ``_split(data)``."""

    name = ""

    def __init__(self, *, n_folds=5, random_state=0):
        self.n_folds = n_folds
        self.random_state = random_state

    def __repr__(self) -> str:
        return f"make_protocol({self.name!r})"

    def check(self, data: EEGData) -> None:
        """Raise DataError (or ConfigError) if this protocol cannot split ``data``; the message names the value."""
        if not isinstance(data, EEGData):
            raise TypeError(f"data must be an EEGData, got {type(data).__name__}; use data.load_dataset(...).")
        for subject in data.subjects:
            real = _real(data, subject)
            if not real.any():
                raise DataError(f"subject {subject!r} has only synthetic trials; protocol {self.name!r} needs real "
                                "trials of every subject.")
            present = np.unique(data.y[real])
            if len(present) < 2:
                raise DataError(f"subject {subject!r} has trials of one class only ({data.classes[present[0]]!r}); "
                                "every subject needs at least two classes. Drop the subject (subjects=...).")
        self._check(data)

    def split(self, data: EEGData) -> list:
        """Check ``data`` and return the folds, a list of `Fold`.

        Raises DataError when a fold tests a class it has no training trials of (e.g. a test file whose condition is
        named ``Comment/left`` where the training file says ``left``): every such trial would count as an error."""
        self.check(data)
        folds = self._split(data)
        digests = [hashlib.blake2b(x.tobytes(), digest_size=16).digest() for x in data.X]  # once, not per fold
        for fold in folds:
            seen = {digests[i] for i in fold.train_idx}
            shared = sum(digests[i] in seen for i in fold.test_idx)
            if shared:
                raise DataError(f"fold {fold.name!r}: {shared} test trial(s) are also training trials (the same "
                                "EEG, e.g. --test naming the --train file); a model scored on its training trials "
                                "says nothing. Give test trials held out of training.")
            unseen = np.setdiff1d(np.unique(data.y[fold.test_idx]), np.unique(data.y[fold.train_idx]))
            if len(unseen):
                trained = [data.classes[c] for c in np.unique(data.y[fold.train_idx])]
                raise DataError(f"fold {fold.name!r} tests class(es) {[data.classes[c] for c in unseen]} but has no "
                                f"training trials of them (training classes {trained}); name the conditions the "
                                "same in every file (event_id) or leave those trials out.")
        return folds

    def _check(self, data):
        pass


class _Official(_Protocol):
    name = "official"

    def _check(self, data):
        if "split" not in data.metadata:
            raise ConfigError("protocol 'official' needs a given train/test split (--train/--test or a bundled "
                              "dataset); use within-subject, cross-session or cross-subject")
        split = data.metadata["split"].astype(str)
        bad = sorted(set(split) - {"train", "test"})
        if bad:
            raise DataError(f"metadata column 'split' must hold 'train' or 'test', got {bad}.")
        for part in ("train", "test"):
            if not ((split == part).to_numpy() & ~data.is_synthetic).any():
                raise DataError(f"protocol 'official' found no real {part} trials (split == {part!r}); give both "
                                "train and test data.")

    def _split(self, data):
        split = data.metadata["split"].astype(str).to_numpy()
        train, test = split == "train", (split == "test") & ~data.is_synthetic
        subjects = data.metadata["subject"].to_numpy()
        per_subject = [s for s in data.subjects if (train & (subjects == s)).any() and (test & (subjects == s)).any()]
        if len(data.subjects) == 1:
            return [Fold("official", data.subjects[0], "", np.flatnonzero(train), np.flatnonzero(test))]
        if len(per_subject) < len(data.subjects):
            train_only = [s for s in data.subjects if s not in per_subject and (train & (subjects == s)).any()]
            test_only = [s for s in data.subjects if s not in per_subject and (test & (subjects == s)).any()]
            if per_subject:  # some subjects matched and others not: a naming slip, not a design
                raise DataError(
                    f"protocol 'official': subjects {per_subject} have train and test trials, but "
                    f"{train_only or 'none'} only train and {test_only or 'none'} only test trials; give every "
                    "subject both halves, named alike (BIDS 'sub-<label>' in both file names), or leave the "
                    "unmatched files out.")
            if len(train_only) > 1 or len(test_only) > 1:  # e.g. A01T..A09T against A01E..A09E
                warnings.warn(
                    f"protocol 'official': no subject has both train and test trials (train: "
                    f"{_listed(train_only)}; test: {_listed(test_only)}), so one pooled fold trains on every train "
                    "subject and tests on every test subject. If these are the same people, name each subject's "
                    "files alike (BIDS 'sub-<label>', e.g. sub-01_ses-T_epo.fif and sub-01_ses-E_epo.fif) for one "
                    "fold per subject.", stacklevel=3)
            return [Fold("official", "all", "", np.flatnonzero(train), np.flatnonzero(test))]
        return [Fold(f"sub-{s}/official", s, "", np.flatnonzero(train & (subjects == s)),
                     np.flatnonzero(test & (subjects == s))) for s in per_subject]


class _WithinSubject(_Protocol):
    name = "within-subject"

    def __repr__(self) -> str:
        return f"make_protocol('within-subject', n_folds={self.n_folds!r}, random_state={self.random_state!r})"

    def _check(self, data):
        for subject in data.subjects:
            real = _real(data, subject)
            counts = np.bincount(data.y[real], minlength=data.n_classes)
            present = np.flatnonzero(counts)
            smallest = present[np.argmin(counts[present])]
            if counts[smallest] < self.n_folds:
                raise DataError(f"subject {subject!r} has {counts[smallest]} trial(s) of class "
                                f"{data.classes[smallest]!r}, fewer than n_folds={self.n_folds}; lower n_folds.")

    def _split(self, data):
        from sklearn.model_selection import StratifiedKFold

        folds = []
        cv = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.random_state)
        for subject in data.subjects:
            real = np.flatnonzero(_real(data, subject))
            synthetic = np.flatnonzero(_of(data, subject) & data.is_synthetic)
            for k, (tr, te) in enumerate(cv.split(real, data.y[real]), start=1):
                folds.append(Fold(f"sub-{subject}/fold-{k}", subject, "",
                                  np.sort(np.concatenate([real[tr], synthetic])), np.sort(real[te])))
        return folds


class _CrossSession(_Protocol):
    name = "cross-session"

    def _check(self, data):
        for subject in data.subjects:
            sessions = _sessions(data, subject)
            if len(sessions) < 2:
                raise DataError(f"protocol 'cross-session' needs at least 2 sessions per subject; subject "
                                f"{subject!r} has {len(sessions)} ({list(sessions)}). Use within-subject.")

    def _split(self, data):
        folds = []
        session = data.metadata["session"].to_numpy()
        for subject in data.subjects:
            of = _of(data, subject)
            real = _real(data, subject)
            for s in _sessions(data, subject):
                folds.append(Fold(f"sub-{subject}/ses-{s}", subject, s, np.flatnonzero(of & (session != s)),
                                  np.flatnonzero(real & (session == s))))
        return folds


class _CrossSubject(_Protocol):
    name = "cross-subject"

    def _check(self, data):
        if len(data.subjects) < 2:
            raise DataError(f"protocol 'cross-subject' needs at least 2 subjects, got {len(data.subjects)} "
                            f"({list(data.subjects)}); load more subjects or use within-subject.")
        if _subjects_are_file_names(data):
            warnings.warn(
                f"protocol 'cross-subject': each file is one subject ({_listed(data.subjects)}): the file names "
                "carry no BIDS 'sub-<label>' entity and the epochs no 'subject' metadata. Files of one person "
                "(sessions, runs) are then trained on when that person is tested; name them sub-<label>_... so "
                "that they are one subject.", stacklevel=3)

    def _split(self, data):
        return [Fold(f"sub-{s}", s, "", np.flatnonzero(~_of(data, s)), np.flatnonzero(_real(data, s)))
                for s in data.subjects]


_CLASSES = {cls.name: cls for cls in (_Official, _WithinSubject, _CrossSession, _CrossSubject)}


def _listed(names, most: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _subjects_are_file_names(data: EEGData) -> bool:
    """Whether `data.datasets.load_files` made each file its own subject (no BIDS entity, no subject metadata)."""
    from .datasets import _file_stem

    if "source" not in data.metadata:
        return False
    pairs = data.metadata[["subject", "source"]].dropna().drop_duplicates()
    return len(pairs) > 1 and all(str(sub) == _file_stem(str(src)) for sub, src in pairs.itertuples(index=False))


def _of(data: EEGData, subject: str) -> np.ndarray:
    return (data.metadata["subject"] == subject).to_numpy()


def _real(data: EEGData, subject: str) -> np.ndarray:
    return _of(data, subject) & ~data.is_synthetic


def _sessions(data: EEGData, subject: str) -> tuple:
    """Sessions of ``subject``'s real trials, in order of first appearance."""
    real = _real(data, subject)
    return tuple(dict.fromkeys(data.metadata["session"].to_numpy()[real]))
