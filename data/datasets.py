"""Where a study's data come from: epochs files, a given train/test pair, a bundled set, or a MOABB dataset.

Every loader returns one `EEGData` whose metadata says, per trial, ``subject``, ``session`` and ``run`` (str),
and where known ``source`` (the file) and ``split`` (``"train"`` / ``"test"``, an official split). The evaluation
protocols (`data.protocols`) split on these columns.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import mne
import numpy as np
import pandas as pd

from ._checks import ConfigError, DataError, check_option
from .bundled import _BY_LOWER, bundled_names, load_bundled
from .containers import EEGData, concat_data
from .epochs import _EPOCHS_SUFFIXES, epochs_to_data, load_epochs

_BIDS_KEYS = {"sub": "subject", "ses": "session", "run": "run"}
_BIDS_RE = re.compile(r"(?:^|_)(sub|ses|run)-([A-Za-z0-9]+)")
_GLOB_CHARS = ("*", "?", "[")
# MOABB dataset.paradigm -> the paradigm class used when none is given.
_DEFAULT_PARADIGMS = {"imagery": "MotorImagery", "p300": "P300", "ssvep": "SSVEP", "cvep": "CVEP"}


def bids_entities(path) -> dict:
    """Subject, session and run from a BIDS-style file name (``_``-separated ``key-value`` pairs).

    Parameters
    ----------
    path : str | Path
        A file path; only its name is read, e.g. ``sub-01_ses-2_task-mi_run-3_epo.fif``.

    Returns
    -------
    entities : dict of str to str
        The keys ``"subject"`` (from ``sub-``), ``"session"`` (``ses-``) and ``"run"`` (``run-``) that the name
        holds, e.g. ``{"subject": "01", "session": "2", "run": "3"}``; values are alphanumeric, as in BIDS.
    """
    found = {}
    for key, value in _BIDS_RE.findall(Path(path).name):
        found.setdefault(_BIDS_KEYS[key], value)
    return found


def load_files(sources, **load_epochs_kwargs) -> EEGData:
    """Load epochs files (or raw recordings) into one `EEGData`.

    Parameters
    ----------
    sources : str | Path | list of str or Path
        File paths and glob patterns (``"data/sub-*_epo.fif"``, ``"data/**/*_epo.fif"``; quote them in a shell).
        Patterns expand to their sorted matches; a file matched twice is read once.
    **load_epochs_kwargs
        Passed to `load_epochs` for every file (``event_id``, ``tmin``, ``tmax``, ...).

    Returns
    -------
    data : EEGData
        The trials of every file in turn. Metadata: ``subject``, ``session`` and ``run`` from the BIDS entities
        of the file name (`bids_entities`), else from the epochs' own metadata columns of those names, else the
        file is its own subject (its name without the ``-epo.fif`` / ``_epo.fif`` suffix) with session and run
        ``"0"``; ``source`` is the file path. Classes are unified by name (`concat_data`).

    Raises
    ------
    DataError
        A pattern matches no file, a file cannot be read, the files differ in channels, sfreq or window length
        (the message names the subject and file; the same channels in another order are reordered by name), or a
        class of ``event_id`` has events in no file (one missing in some files is a warning).
    """
    paths = expand_sources(sources)
    data = concat_data([_load_file(path, load_epochs_kwargs) for path in paths])
    event_id = load_epochs_kwargs.get("event_id")
    if event_id:  # a file may lack a class (warned); every file lacking it is a typo or the wrong code
        counts = np.bincount(data.y, minlength=data.n_classes)
        absent = [f"{name}={code}" for name, code in event_id.items()
                  if name in data.classes and counts[data.classes.index(name)] == 0]
        if absent:
            raise DataError(f"event_id {', '.join(absent)} matches no event in any of the {len(paths)} file(s) "
                            f"({_files_name(paths)}); check the name and code against the files' events.")
    return data


def expand_sources(sources) -> list:
    """File paths of ``sources`` (paths and glob patterns), patterns expanded and sorted, duplicates removed (also
    the same file under another spelling or through a link)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    elif not isinstance(sources, (list, tuple)) or not sources:
        raise TypeError(f"sources must be a path, a glob pattern or a non-empty list of them, got {sources!r}.")
    paths = []
    for source in sources:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"each source must be a path or a glob pattern (str or Path), got "
                            f"{type(source).__name__}.")
        text = os.path.expanduser(os.fspath(source))
        if not text.strip():
            raise DataError("a data source is an empty path; give a file path or a quoted glob such as "
                            "'data/sub-*_epo.fif'.")
        if any(c in text for c in _GLOB_CHARS):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise DataError(f"no files match {text!r}; check the path (relative to {os.getcwd()!r}).")
            paths += matches
        else:
            paths.append(text)
    unique = {}  # one file under two spellings (./a, a, a link to a) is read once, under its first spelling
    for path in paths:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def load_pair(train, test) -> EEGData:
    """Load an official train/test split into one `EEGData` with a ``split`` column.

    Parameters
    ----------
    train, test : str | Path | list | mne.BaseEpochs | EEGData
        Each side: paths or glob patterns (read with `load_files`), epochs, or data.

    Returns
    -------
    data : EEGData
        The training trials, then the test trials; metadata column ``split`` is ``"train"`` or ``"test"``.
        Classes are unified by name.
    """
    parts = []
    for split, side in (("train", train), ("test", test)):
        data = _as_data(side, name=split)
        parts.append(_with_columns(data, split=split))
    return concat_data(parts)


#: Bundled sets pooled into one multi-subject dataset: ``scp`` is BCI Competition II Ia (subject "scp1") and Ib
#: (subject "scp2", its first 3.5 s of feedback, the window of Ia; its vEOG channel is not EEG and is left out).
POOLED = {"scp": (("scp1", {}), ("scp2", {"tmax": 3.5}))}


def dataset_names() -> list:
    """Names `load_bundled_dataset` accepts: the bundled sets and the pooled multi-subject ``scp``."""
    return sorted(bundled_names()) + sorted(POOLED)


def load_bundled_dataset(name: str, **bundled_kwargs) -> EEGData:
    """Load a bundled data set (its official train and test parts) into one `EEGData`.

    Parameters
    ----------
    name : str
        A name from `bundled_names` (any case) or an alias `load_bundled` accepts.
    **bundled_kwargs
        Passed to `load_bundled` (e.g. ``tmax``).

    Returns
    -------
    data : EEGData
        Train then test trials, metadata ``split`` = ``"train"`` / ``"test"``; ``subject`` is ``name`` unless the
        bundled epochs carry their own ``subject`` metadata.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}.")
    if name.lower() in POOLED:
        return concat_data([load_bundled_dataset(part, **kw) for part, kw in POOLED[name.lower()]])
    known = {n.lower(): n for n in bundled_names()}
    if name.lower() not in _BY_LOWER:  # the error names the option and every name it takes, the pooled "scp" too
        check_option("dataset (--dataset)", name, dataset_names())
    name = known.get(name.lower(), name)
    train, test = load_bundled(name, **bundled_kwargs)
    return load_pair(*(_epochs_with_subject(epochs, name) for epochs in (train, test)))


def load_moabb(dataset, *, paradigm=None, subjects=None) -> EEGData:
    """Load a MOABB dataset through a MOABB paradigm into one `EEGData`.

    Parameters
    ----------
    dataset : moabb.datasets.base.BaseDataset | str
        A dataset instance, or the name of a class in ``moabb.datasets`` (``"BNCI2014_001"``, ``"FakeDataset"``),
        built with its defaults. Real datasets download on first use (MOABB's cache).
    paradigm : moabb.paradigms.base.BaseParadigm | str, default=None
        A paradigm instance, or the name of a class in ``moabb.paradigms`` (``"MotorImagery"``,
        ``"LeftRightImagery"``, ``"P300"``, ``"SSVEP"``, ...). If None, chosen from ``dataset.paradigm``:
        ``"imagery"`` -> MotorImagery, ``"p300"`` -> P300, ``"ssvep"`` -> SSVEP, ``"cvep"`` -> CVEP.
    subjects : sequence of int or str, default=None
        Subjects to load, from ``dataset.subject_list``; all if None.

    Returns
    -------
    data : EEGData
        All trials of the chosen subjects. Metadata ``subject``, ``session`` and ``run`` are MOABB's, as str.
        Classes are the paradigm's event names, in the order of the dataset's event codes.

    Raises
    ------
    ConfigError
        MOABB is not installed, an unknown dataset / paradigm name or subject, or a filter-bank paradigm.
    DataError
        The subjects differ in channels, sfreq or window length, or a subject's files are not on disk and could not
        be downloaded (no network, or the server did not answer); the message names the dataset and says where
        MOABB looks (``MNE_DATA``).
    """
    try:
        import moabb.datasets
        import moabb.paradigms
        from moabb.datasets.base import BaseDataset
        from moabb.paradigms.base import BaseParadigm
    except ImportError as exc:
        raise ConfigError("MOABB is not installed: pip install 'eegrobust[moabb]'") from exc
    if isinstance(dataset, str):
        dataset = _moabb_class("dataset", dataset, moabb.datasets, BaseDataset)()
    elif not isinstance(dataset, BaseDataset):
        raise TypeError(f"dataset must be a MOABB dataset or a class name in moabb.datasets, got "
                        f"{type(dataset).__name__}.")
    if paradigm is None:
        kind = str(getattr(dataset, "paradigm", ""))
        paradigm = check_option(f"paradigm of {type(dataset).__name__} (dataset.paradigm)", kind,
                                list(_DEFAULT_PARADIGMS))
        paradigm = _DEFAULT_PARADIGMS[paradigm]
    if isinstance(paradigm, str):
        paradigm = _moabb_class("paradigm", paradigm, moabb.paradigms, BaseParadigm)()
    elif not isinstance(paradigm, BaseParadigm):
        raise TypeError(f"paradigm must be a MOABB paradigm or a class name in moabb.paradigms, got "
                        f"{type(paradigm).__name__}.")
    if len(getattr(paradigm, "filters", [None])) > 1:
        raise ConfigError(f"filter-bank paradigms are not supported, got {type(paradigm).__name__}; use "
                          "MotorImagery, LeftRightImagery, P300 or SSVEP.")
    chosen = _moabb_subjects(dataset, subjects)
    parts = []
    for subject in chosen:
        try:
            parts.append(_moabb_subject(dataset, paradigm, subject))
        except Exception as exc:
            failure = _network_error(exc)
            if failure is None:
                raise
            raise DataError(_download_message(dataset, subject, failure)) from exc
    return concat_data(parts)


def load_dataset(*, data=None, train=None, test=None, bundled=None, moabb=None, subjects=None, paradigm=None):
    """Load a study's data from exactly one source, and name it for result tables.

    Parameters
    ----------
    data : str | Path | list | mne.BaseEpochs | EEGData, default=None
        Epochs files or glob patterns (`load_files`), epochs, or data; no official split.
    train, test : str | Path | list | mne.BaseEpochs | EEGData, default=None
        An official train/test split (`load_pair`); give both.
    bundled : str, default=None
        A bundled data set (`load_bundled_dataset`).
    moabb : moabb dataset | str, default=None
        A MOABB dataset or class name (`load_moabb`).
    subjects : str | int | sequence of str or int, default=None
        Keep only these subjects (matched as str; an int also matches a zero-padded name, 1 -> ``"01"``).
    paradigm : moabb paradigm | str, default=None
        MOABB paradigm; only with ``moabb``.

    Returns
    -------
    name : str
        The bundled name, the MOABB dataset class name, for files the common file stem or pattern (``"files"``
        when there is none), ``"custom"`` for a pair or for epochs / data given directly.
    data : EEGData
        The trials, metadata as the loader documents.

    Raises
    ------
    ConfigError
        Not exactly one source given, ``paradigm`` without ``moabb``, or an unknown subject.
    """
    given = [key for key, value in (("data", data), ("train", train), ("test", test), ("bundled", bundled),
                                    ("moabb", moabb)) if value is not None]
    sources = [key for key in given if key not in ("train", "test")] + (["train/test"] if {"train", "test"} &
                                                                         set(given) else [])
    if len(sources) != 1:
        got = ", ".join(given) if given else "none"
        raise ConfigError(f"give exactly one data source: data=, train= and test=, bundled= or moabb=; got {got}.")
    if sources == ["train/test"] and not {"train", "test"} <= set(given):
        missing = "test" if train is not None else "train"
        raise ConfigError(f"an official split needs both train= and test=; {missing}= is missing.")
    if paradigm is not None and moabb is None:
        raise ConfigError("paradigm= applies to MOABB datasets only; give moabb= or drop paradigm=.")
    if moabb is not None:
        name = moabb if isinstance(moabb, str) else type(moabb).__name__
        return name, load_moabb(moabb, paradigm=paradigm, subjects=subjects)
    if bundled is not None:
        loaded = load_bundled_dataset(bundled)
        name = {n.lower(): n for n in dataset_names()}.get(bundled.lower(), bundled)
    elif data is not None:
        loaded, name = _as_data(data, name="data"), _files_name(data)
    else:
        loaded, name = load_pair(train, test), "custom"
    return name, select_subjects(loaded, subjects)


def select_subjects(data: EEGData, subjects) -> EEGData:
    """The trials of ``subjects`` (str or int, see `load_dataset`); all of ``data`` if ``subjects`` is None."""
    if subjects is None:
        return data
    wanted = _match_subjects(subjects, data.subjects)
    return data.subset(np.flatnonzero(data.metadata["subject"].isin(wanted).to_numpy()))


def _match_subjects(subjects, available) -> list:
    """``subjects`` as names in ``available``; ConfigError naming the available ones for any other."""
    if isinstance(subjects, (str, int, np.integer)):
        subjects = [subjects]
    subjects = list(subjects)
    if not subjects:
        raise ConfigError(f"subjects must name at least one subject of {list(available)}, got [].")
    names = {str(a): a for a in available}
    numbers = {int(str(a)): a for a in available if str(a).isdigit()}
    matched, unknown = [], []
    for s in subjects:
        if str(s) in names:
            matched.append(names[str(s)])
        elif str(s).isdigit() and int(str(s)) in numbers:
            matched.append(numbers[int(str(s))])
        else:
            unknown.append(s)
    if unknown:
        raise ConfigError(f"subjects {unknown} are not in the data; available subjects are "
                          f"{[str(a) for a in available]}.")
    return list(dict.fromkeys(matched))


def _load_file(path: str, load_epochs_kwargs) -> EEGData:
    epochs = load_epochs(path, **load_epochs_kwargs)
    data = epochs_to_data(epochs)
    own = epochs.metadata.columns if epochs.metadata is not None else ()
    entities = bids_entities(path)
    columns = {}
    for key, default in (("subject", _file_stem(path)), ("session", "0"), ("run", "0")):
        if key in entities:
            columns[key] = entities[key]
        elif key not in own:
            columns[key] = default
    return _with_columns(data, source=str(path), **columns)


#: MNE's names for raw FIF files (``sample_audvis_raw.fif``), whose suffix is not part of the subject's name.
_RAW_SUFFIXES = ("-raw.fif", "_raw.fif", "-raw.fif.gz", "_raw.fif.gz")


def _file_stem(path) -> str:
    """The file name without its epochs or raw FIF suffix (``-epo.fif``, ``_epo.fif``, ``_raw.fif``, ...) or
    extension."""
    name = Path(path).name
    for suffix in _EPOCHS_SUFFIXES + _RAW_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def _files_name(sources) -> str:
    """A name for data from files: one file's stem; for several (glob patterns expanded), the name of their common
    folder (a BIDS root); else ``"files"``."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not isinstance(sources, (list, tuple)):
        return "custom"
    try:
        paths = expand_sources(list(sources))
    except (DataError, TypeError):  # loading names the problem
        paths = [os.fspath(s) for s in sources if isinstance(s, (str, os.PathLike))]
    name = _file_stem(paths[0]) if len(paths) == 1 else ""
    if name and not any(c in name for c in _GLOB_CHARS):
        return name
    folders = {Path(os.path.abspath(p)).parent for p in paths}
    folder = Path(os.path.commonpath([str(f) for f in folders])) if folders else Path("")
    while folder.name.startswith(("sub-", "ses-")) or folder.name in ("eeg", "meg", "ieeg"):  # up to the BIDS root
        folder = folder.parent
    return folder.name or "files"


def _as_data(side, *, name: str) -> EEGData:
    if isinstance(side, EEGData):
        return side
    if isinstance(side, mne.BaseEpochs):
        return epochs_to_data(load_epochs(side))
    if isinstance(side, (str, os.PathLike, list, tuple)):
        return load_files(side)
    raise TypeError(f"{name} must be paths, a glob pattern, an mne.Epochs or an EEGData, got "
                    f"{type(side).__name__}.")


def _with_columns(data: EEGData, **columns) -> EEGData:
    """``data`` with metadata columns set to the given constant values."""
    metadata = data.metadata.copy()
    for key, value in columns.items():
        metadata[key] = value
    return EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes, data.is_synthetic, metadata, data.ch_pos)


def _epochs_with_subject(epochs, subject: str):
    """Epochs given a constant ``subject`` metadata column unless they carry one already."""
    if epochs.metadata is not None and "subject" in epochs.metadata:
        return epochs
    epochs = epochs.copy()
    metadata = epochs.metadata.copy() if epochs.metadata is not None else pd.DataFrame(index=range(len(epochs)))
    metadata["subject"] = subject
    with mne.use_log_level("warning"):
        epochs.metadata = metadata.reset_index(drop=True)
    return epochs


def _moabb_class(kind: str, name: str, module, base):
    """The class called ``name`` in a MOABB module; ConfigError with a "did you mean" for an unknown name."""
    allowed = [n for n in dir(module) if not n.startswith("_") and isinstance(getattr(module, n), type)
               and issubclass(getattr(module, n), base)]
    return getattr(module, check_option(f"MOABB {kind}", name, allowed))


def _moabb_subjects(dataset, subjects) -> list:
    available = list(dataset.subject_list)
    if subjects is None:
        return available
    try:
        return _match_subjects(subjects, available)
    except ConfigError:
        raise ConfigError(f"subjects {subjects!r} are not all in {type(dataset).__name__}.subject_list "
                          f"{available}.") from None


def _moabb_subject(dataset, paradigm, subject) -> EEGData:
    """One subject's epochs from MOABB, labelled with the paradigm's event names (MOABB's epochs carry codes)."""
    with mne.use_log_level("warning"):
        epochs, labels, metadata = paradigm.get_data(dataset, [subject], return_epochs=True)
        used = paradigm.used_events(dataset)
        names = [name for name, _ in sorted(used.items(), key=lambda kv: kv[1])]
        codes = {name: k + 1 for k, name in enumerate(names)}
        epochs.events[:, 2] = [codes[label] for label in labels]
        epochs.event_id = codes
        epochs.metadata = metadata.reset_index(drop=True)
    return epochs_to_data(epochs)


def _network_types() -> tuple:
    """Exception classes that mean a download did not get through: no network, no answer, or an HTTP error."""
    types = [ConnectionError, TimeoutError, socket.gaierror, socket.herror, urllib.error.URLError]
    try:  # requests (MOABB's pooch downloads) and httpx (its NEMAR client) come with MOABB, not with eegrobust
        import requests

        types += [requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.HTTPError]
    except ImportError:
        pass
    try:
        import httpx

        types.append(httpx.TransportError)
    except ImportError:
        pass
    return tuple(types)


def _network_error(exc: BaseException):
    """The outermost network error in ``exc`` and the exceptions it was raised from, or None."""
    types, seen = _network_types(), set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, types):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _download_message(dataset, subject, failure: BaseException) -> str:
    """One line: which MOABB dataset could not be downloaded, why, where MOABB looks for it, and what to do."""
    name = type(dataset).__name__
    status = getattr(getattr(failure, "response", None), "status_code", None) or getattr(failure, "code", None)
    reason = (f"the server answered HTTP {status}" if isinstance(status, int)
              else "no network, or the server did not answer")
    host = _failure_host(failure)
    where = mne.get_config("MNE_DATA") or os.path.join(os.path.expanduser("~"), "mne_data")
    return (f"MOABB dataset {name} (subject {subject}) is not on disk and could not be downloaded"
            f"{f' from {host}' if host else ''} ({reason}). Download it once on a machine with internet "
            f"(python -c 'import moabb.datasets; moabb.datasets.{name}().download()') and copy that machine's "
            f"MNE_DATA folder to {where} (MNE_DATA here), or set MNE_DATA to a folder that holds a copy "
            f"({type(failure).__name__}).")


def _failure_host(failure: BaseException) -> str:
    """The host a failed download tried to reach, or ``""`` when the error does not say."""
    try:  # requests and httpx errors carry their request (httpx raises RuntimeError when it has none)
        url = getattr(getattr(failure, "request", None), "url", None) or getattr(failure, "url", None)
    except Exception:  # noqa: BLE001
        url = None
    if url:
        return urlparse(str(url)).netloc
    found = re.findall(r"host='([^']+)'", str(failure))
    return found[0] if found else ""
