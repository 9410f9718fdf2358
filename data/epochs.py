"""EEG in: recordings and epochs files to ``mne.Epochs``, and ``mne.Epochs`` to `EEGData` in microvolts."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np

from ._checks import ConfigError, DataError, check_labels, check_X
from .augment import synthetic_mask
from .containers import EEGData

_EPOCHS_SUFFIXES = ("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")
_MAX_REASON = 300  # characters of an MNE error message kept in ours

# Median channel std (µV) outside these bounds is not EEG stored in volts, see `_check_units`.
_MIN_STD_UV, _MAX_STD_UV = 1e-2, 1e5


def to_microvolts(X) -> np.ndarray:
    """Convert EEG in volts (as MNE stores it) to microvolts.

    Parameters
    ----------
    X : array-like
        EEG in volts, any shape.

    Returns
    -------
    X_uv : ndarray
        ``X * 1e6``, floating point (integers become float64).
    """
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    return X * 1e6


def load_epochs(source, *, events=None, event_id=None, tmin=0.0, tmax=None, baseline=None, picks="eeg"):
    """Load epochs from an ``mne.Epochs``, an epochs file or a raw recording.

    Parameters
    ----------
    source : mne.BaseEpochs | str | Path
        An epochs object (returned after checks, loaded into memory if it was not); a ``*-epo.fif`` /
        ``*_epo.fif`` file; or a raw recording that ``mne.io.read_raw`` reads (``.fif``, ``.edf``, ``.bdf``,
        ``.gdf``, ``.vhdr``, ``.set``, ...). A ``.fif`` file without raw data is tried as epochs.
    events : ndarray of shape (n_events, 3), int, default=None
        Events for a raw recording. If None, they come from the stim channel (``mne.find_events``) when there is
        one, else from the annotations (``mne.events_from_annotations``).
    event_id : dict of str to int, default=None
        Class names and their event codes. For a raw recording it selects the events to epoch (for annotations,
        the keys are annotation descriptions); if None every code found is a class named after it. For epochs,
        the keys select conditions.
    tmin, tmax : float
        Epoch start and end in seconds relative to each event; raw recordings only. ``tmax`` is required there.
    baseline : tuple of float | None, default=None
        Baseline correction interval passed to ``mne.Epochs``; raw recordings only.
    picks : str | list, default="eeg"
        Channels to keep when epoching a raw recording.

    Returns
    -------
    epochs : mne.BaseEpochs
        Preloaded epochs, at least one.

    Raises
    ------
    DataError
        The path does not exist, MNE cannot read it, there are no events, no EEG channels, or no epochs.
    ConfigError
        ``tmax`` is missing for a raw recording, or ``events`` / ``event_id`` are malformed.
    """
    if isinstance(source, mne.BaseEpochs):
        return _checked_epochs(_select_conditions(source, event_id), f"the epochs ({_describe(source)})")
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be an mne.Epochs or a path (str or Path), got {type(source).__name__}.")
    path = Path(source).expanduser()
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to {os.getcwd()!r})"
        raise DataError(f"EEG file {str(path)!r} does not exist{where}; check the path.")
    if path.name.lower().endswith(_EPOCHS_SUFFIXES):
        epochs = _read(mne.read_epochs, path, what="epochs")
        return _checked_epochs(_select_conditions(epochs, event_id), str(path))
    raw = _read_raw_or_epochs(path)
    if isinstance(raw, mne.BaseEpochs):
        return _checked_epochs(_select_conditions(raw, event_id), str(path))
    return _checked_epochs(_epoch_raw(raw, path, events, event_id, tmin, tmax, baseline, picks), str(path))


def epochs_to_data(epochs, *, classes=None) -> EEGData:
    """Turn epochs into an `EEGData` in microvolts, keeping the EEG channels and the epochs' metadata.

    Channels marked bad are kept, so that every file of a montage gives the same channel count; drop them first
    with ``epochs.drop_channels(epochs.info["bads"])`` if they should go. Classes are the ``event_id`` names in
    the order of their codes, and a trial's label is the index of its class; a class with no trials still
    counts (so train and test files with the same ``event_id`` give the same labels). Event codes differ between
    files and studies, so compare data by class name: pass ``classes`` (or call ``data.relabel(classes)``).

    Parameters
    ----------
    epochs : mne.BaseEpochs
        Epochs in volts, as MNE stores EEG. The columns of ``epochs.metadata`` (when set) are kept; its
        ``subject``, ``session`` and ``run`` columns become those of `EEGData.metadata` (as str), and its
        ``is_synthetic`` column marks synthetic trials.
    classes : sequence of str, default=None
        Class order to label the trials with, matched by name (see `EEGData.relabel`). If None, the event-code
        order.

    Returns
    -------
    data : EEGData
        ``X`` of shape (n_trials, n_eeg_chans, n_times), float32 in µV; ``y`` int64 in ``[0, n_classes)``.

    Raises
    ------
    DataError
        Zero epochs, no EEG channels, NaN/Inf values, fewer than two classes, values whose scale is not EEG
        in volts (for example microvolts written where MNE expects volts), or a class name missing from
        ``classes``.
    """
    if not isinstance(epochs, mne.BaseEpochs):
        raise TypeError(f"epochs must be an mne.Epochs, got {type(epochs).__name__}; use data.load_epochs(path) first.")
    if len(epochs) == 0:
        raise DataError(f"epochs hold zero epochs ({_describe(epochs)}); were they all dropped or rejected?")
    idx = mne.pick_types(epochs.info, eeg=True, exclude=())
    if len(idx) == 0:
        types = sorted(set(epochs.get_channel_types()))
        raise DataError(
            f"no EEG channels among the {len(epochs.ch_names)} channels (types {types}); set channel types with "
            "epochs.set_channel_types({name: 'eeg', ...}) before converting."
        )
    X = check_X(to_microvolts(epochs.get_data(picks=idx)), name="epochs data").astype(np.float32)
    _check_units(X)
    code_classes, y = _labels(epochs)
    y = check_labels(y, len(X), name="epochs labels")
    ch_names = [epochs.ch_names[i] for i in idx]
    metadata = None if epochs.metadata is None else epochs.metadata.reset_index(drop=True)
    data = EEGData(X, y, epochs.info["sfreq"], tuple(ch_names), code_classes, synthetic_mask(epochs), metadata,
                   _positions(epochs, ch_names))
    return data if classes is None else data.relabel(classes)


def _positions(epochs, ch_names) -> dict | None:
    """Sensor positions (m) of the EEG channels from the epochs' montage; None unless every channel has one."""
    montage = epochs.get_montage()
    if montage is None:
        return None
    pos = montage.get_positions()["ch_pos"]
    out = {n: [float(v) for v in pos[n]] for n in ch_names if n in pos and np.all(np.isfinite(pos[n]))}
    return out if len(out) == len(ch_names) else None


def _labels(epochs):
    """Classes ordered by event code, and each epoch's class index; at least two classes present."""
    by_code = sorted(epochs.event_id.items(), key=lambda kv: kv[1])
    classes = tuple(name for name, _ in by_code)
    index = {code: i for i, (_, code) in enumerate(by_code)}
    codes = epochs.events[:, 2]
    unknown = sorted(set(codes.tolist()) - set(index))
    if unknown:
        raise DataError(f"epochs have event codes {unknown} that are not in event_id {epochs.event_id}; fix event_id.")
    y = np.array([index[c] for c in codes], dtype=np.int64)
    present = [classes[i] for i in np.unique(y)]
    if len(present) < 2:
        raise DataError(
            f"epochs hold {len(present)} class(es) {present} (event_id {epochs.event_id}); a classifier needs at "
            "least two. Check the events and event_id you selected."
        )
    return classes, y


def _check_units(X_uv: np.ndarray) -> None:
    """Raise if EEG converted from volts to µV has a scale no EEG in volts would give."""
    scale = float(np.median(np.std(X_uv, axis=-1)))
    if scale == 0.0:
        raise DataError("epochs data are constant (zero standard deviation in every channel); nothing to decode.")
    if scale > _MAX_STD_UV:
        raise DataError(
            f"epochs data have a median channel std of {scale * 1e-6:.3g} V, but EEG is ~1e-5 V: the data were "
            "likely stored in microvolts where MNE expects volts. Divide by 1e6 "
            "(epochs.apply_function(lambda x: x * 1e-6)) or set the unit properly in the file."
        )
    if scale < _MIN_STD_UV:
        raise DataError(
            f"epochs data have a median channel std of {scale * 1e-6:.3g} V, far below EEG (~1e-5 V): the data "
            "were likely scaled to volts twice. Multiply by 1e6 or set the unit properly in the file."
        )


def _checked_epochs(epochs, what: str):
    if len(epochs) == 0:
        raise DataError(f"{what} holds zero epochs; were they all dropped, rejected or outside the recording?")
    if not epochs.preload:
        epochs.load_data()
    return epochs


def _select_conditions(epochs, event_id):
    if event_id is None:
        return epochs
    missing = sorted(set(event_id) - set(epochs.event_id))
    if missing:
        raise ConfigError(f"event_id names {missing} are not conditions of the epochs {sorted(epochs.event_id)}.")
    return epochs[list(event_id)]


def _read(reader, path: Path, *, what: str, **kwargs):
    try:
        return reader(path, preload=True, verbose="error", **kwargs)
    except Exception as exc:
        raise DataError(f"could not read {what} from {str(path)!r}: {_reason(exc)}") from exc


def _read_raw_or_epochs(path: Path):
    """Read a raw recording; a ``.fif`` or EEGLAB ``.set`` that holds epochs instead is read as epochs."""
    try:
        return mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as exc:
        name = path.name.lower()
        readers = ((mne.read_epochs, (".fif", ".fif.gz")), (mne.read_epochs_eeglab, (".set",)))
        for reader, suffixes in readers:
            if name.endswith(suffixes):
                try:
                    return reader(path, verbose="error") if reader is mne.read_epochs_eeglab else reader(
                        path, preload=True, verbose="error")
                except Exception:
                    pass
        raise DataError(
            f"could not read {str(path)!r} with MNE: {_reason(exc)}. load_epochs reads *-epo.fif and EEGLAB epochs "
            "and the raw recordings mne.io.read_raw supports (.fif, .edf, .bdf, .gdf, .vhdr, .set, ...); is the file "
            "intact?"
        ) from exc


def _epoch_raw(raw, path, events, event_id, tmin, tmax, baseline, picks):
    if tmax is None:
        raise ConfigError(f"tmax is required to cut epochs from the raw recording {str(path)!r}; pass tmax=<seconds>.")
    if isinstance(picks, str) and picks == "eeg" and len(mne.pick_types(raw.info, eeg=True, exclude=())) == 0:
        types = sorted(set(raw.get_channel_types()))
        raise DataError(
            f"no EEG channels in {str(path)!r} (types {types}); set channel types with "
            "raw.set_channel_types({name: 'eeg', ...}) and pass the Raw, or pass picks=."
        )
    events, event_id = _find_events(raw, path, events, event_id)
    try:
        return mne.Epochs(raw, events, event_id, tmin=tmin, tmax=tmax, baseline=baseline, picks=picks,
                          preload=True, verbose="error")
    except Exception as exc:
        raise DataError(f"could not cut epochs from {str(path)!r}: {_reason(exc)}") from exc


def _find_events(raw, path, events, event_id):
    """Events and event_id from ``events``, the stim channel or the annotations, in that order."""
    if events is not None:
        events = np.asarray(events)
        if events.ndim != 2 or events.shape[1] != 3 or not np.issubdtype(events.dtype, np.integer):
            raise ConfigError(f"events must be an int array of shape (n_events, 3), got {events.dtype} {events.shape}.")
        if len(events) == 0:
            raise DataError(f"events for {str(path)!r} is empty (shape {events.shape}); pass at least one event.")
    elif len(mne.pick_types(raw.info, stim=True, exclude=())):
        events = mne.find_events(raw, shortest_event=1, verbose="error")
    if events is not None and len(events):
        if event_id is None:
            event_id = {str(c): int(c) for c in np.unique(events[:, 2])}
        return events, event_id
    try:
        events, found_id = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    except Exception as exc:
        raise DataError(f"could not read events from the annotations of {str(path)!r}: {_reason(exc)}") from exc
    if len(events) == 0:
        raise DataError(
            f"no events in {str(path)!r}: no stim channel events and no annotations matching event_id={event_id}; "
            "pass events= (an (n_events, 3) array) or event_id= with annotation descriptions."
        )
    return events, found_id


def _describe(epochs) -> str:
    return f"{type(epochs).__name__}, {len(epochs.ch_names)} channels, event_id {epochs.event_id}"


def _reason(exc: BaseException) -> str:
    """One line naming an exception: its type and its message, whitespace collapsed and cut."""
    msg = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
