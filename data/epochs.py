"""EEG in: recordings and epochs files to ``mne.Epochs``, and ``mne.Epochs`` to `EEGData` in microvolts."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import struct
import warnings
from collections import Counter
from collections.abc import Mapping
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
# A peak above this many "volts" is over 1 V even if the values were nanovolts: not EEG in any unit.
_MAX_PEAK_V = 1e9
# A median channel std (in the file's "volts") from here up is EEG in nanovolts (~1e4), below it microvolts (~10).
_NANOVOLT_STD = 1e3
_FIF_FILE_ID, _FIF_BLOCK_START, _FIF_BLOCK_END = 100, 104, 105  # FIF tag kinds (mne/_fiff/constants.py)


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


def load_epochs(source, *, events=None, event_id=None, tmin=None, tmax=None, baseline=None, picks="eeg"):
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
        the keys are annotation descriptions, or the codes when the descriptions are codes); if None every code
        found is a class named after it. A class without events in this recording is a warning (it keeps its
        label, with no trials), none of them found an error. A raw BIDS recording (``sub-01_task-x_eeg.edf``) with
        an ``_events.tsv`` beside it takes its events from that file. Events that give no epoch (past the
        recording's end, overlapping a BAD_ annotation) are counted in a warning. For epochs,
        the keys select conditions, and each code must be the one the epochs give that name.
    tmin, tmax : float, default=None
        Epoch start and end in seconds relative to each event; raw recordings only (``tmin=None`` means 0 s).
        ``tmax`` is required there. Epochs are not cut again: crop them with ``epochs.crop`` beforehand.
    baseline : tuple of float | None, default=None
        Baseline correction interval passed to ``mne.Epochs``; raw recordings only.
    picks : str | list, default="eeg"
        Channels to keep when epoching a raw recording; raw recordings only (epochs keep their EEG channels).

    Returns
    -------
    epochs : mne.BaseEpochs
        Preloaded epochs, at least one.

    Raises
    ------
    DataError
        The path does not exist, the file is empty, truncated or MNE cannot read it, there are no events, no EEG
        channels, or no epochs.
    ConfigError
        ``tmax`` is missing for a raw recording; ``events`` / ``event_id`` are malformed; ``event_id`` names a
        condition the epochs lack or gives it another code; or a raw-only option (``tmin``, ``tmax``,
        ``events``, ``baseline``, ``picks``) is given for epochs.
    """
    raw_only = {"tmin": tmin, "tmax": tmax, "events": events, "baseline": baseline,
                "picks": None if isinstance(picks, str) and picks == "eeg" else picks}
    if isinstance(source, mne.BaseEpochs):
        return _from_epochs(source, f"the epochs passed ({_describe(source)})", event_id, raw_only)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be an mne.Epochs or a path (str or Path), got {type(source).__name__}.")
    if not os.fspath(source).strip():
        raise DataError("the EEG file path is empty; give a file path (an epochs file or a raw recording).")
    path = Path(source).expanduser()
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to {os.getcwd()!r})"
        raise DataError(f"EEG file {str(path)!r} does not exist{where}; check the path.")

    is_epochs_name = path.name.lower().endswith(_EPOCHS_SUFFIXES)
    _check_intact(path, " as epochs" if is_epochs_name else "")
    if is_epochs_name:
        return _from_epochs(_read(mne.read_epochs, path, what="epochs"), repr(str(path)), event_id, raw_only)
    try:
        raw = _read_raw_or_epochs(path)
    except DataError:
        if not path.is_dir():  # some recordings are folders (CTF .ds, Neuralynx): MNE had its chance
            raise
        raise DataError(f"EEG file {str(path)!r} is a folder that MNE cannot read as a recording; give its epochs or "
                        f"recording files, or a quoted glob such as '{path / '*-epo.fif'}' (a BIDS folder: "
                        f"'{path / 'sub-*' / '**' / '*_epo.fif'}').") from None
    if isinstance(raw, mne.BaseEpochs):
        return _from_epochs(raw, repr(str(path)), event_id, raw_only)
    tmin = 0.0 if tmin is None else tmin
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
        raise DataError(
            f"{_source(epochs)} have no EEG channels: their {len(epochs.ch_names)} channels are of types "
            f"{_type_counts(epochs)}; mark the EEG channels as 'eeg' with MNE "
            "(epochs.set_channel_types({name: 'eeg', ...}), then epochs.save(...)) before converting."
        )
    idx = _without_other_signals(epochs, idx)
    X_v = check_X(epochs.get_data(picks=idx), name=f"data of {_source(epochs)}")
    _check_units(X_v, _source(epochs))
    X = to_microvolts(X_v).astype(np.float32)
    code_classes, y = _labels(epochs)
    y = check_labels(y, len(X), name="epochs labels")
    ch_names = [epochs.ch_names[i] for i in idx]
    metadata = None if epochs.metadata is None else epochs.metadata.reset_index(drop=True)
    data = EEGData(X, y, epochs.info["sfreq"], tuple(ch_names), code_classes, synthetic_mask(epochs), metadata,
                   _positions(epochs, ch_names))
    data.metadata["epoch_tmin"] = float(epochs.tmin)  # where each window starts: data combine only if it is equal
    return data if classes is None else data.relabel(classes)


#: Channel names of eye, muscle and heart signals (EOG-left, HEOG, VEOG, EOGR, EMG1, ECG, EKG): never EEG electrodes.
_OTHER_SIGNAL = re.compile(r"^[HV]?(EOG|EMG|ECG|EKG)[LRHV]?(?![A-Z])", re.IGNORECASE)


def _without_other_signals(epochs, idx):
    """The EEG picks minus channels typed EEG but named as EOG, EMG or ECG (GDF and EDF files carry no channel
    types, so MNE reads BCI Competition IV's EOG-left, EOG-central and EOG-right as EEG), with a warning naming them;
    all of them when every EEG channel is so named (a file of eye signals only is taken as given)."""
    other = [i for i in idx if _OTHER_SIGNAL.match(epochs.ch_names[i])]
    if not other or len(other) == len(idx):
        return idx
    names = ", ".join(epochs.ch_names[i] for i in other)
    warnings.warn(f"In {_source(epochs)}, channel(s) {names} are typed EEG but named as EOG/EMG/ECG; they are left out "
                  "of the EEG channels. Mark them in the file (raw.set_channel_types({name: 'eog'})) to silence this, "
                  "or rename them to use them as EEG.", UserWarning, stacklevel=3)
    return np.array([i for i in idx if i not in set(other)], dtype=int)


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


def _check_units(X_v: np.ndarray, source: str) -> None:
    """Raise if EEG in volts (as MNE stores it) has a scale no EEG in volts would give."""
    peak = float(np.max(np.abs(X_v)))
    if peak > _MAX_PEAK_V:
        raise DataError(
            f"{source} hold values up to {peak:.3g} in absolute value, which is {peak * 1e-9:.3g} V even if they "
            "were nanovolts: not EEG in volts, microvolts or nanovolts (EEG stays below ~0.01 V). The file is corrupt "
            "or wrongly scaled; check how it was exported (units, calibration, data type) and export it again."
        )
    scale = float(np.median(np.std(X_v, axis=-1, dtype=np.float64))) * 1e6
    if scale == 0.0:
        raise DataError(f"{source} are constant (zero standard deviation in every channel); nothing to decode.")
    if scale > _MAX_STD_UV:
        unit, factor = ("nanovolts", "1e9") if scale * 1e-6 >= _NANOVOLT_STD else ("microvolts", "1e6")
        raise DataError(
            f"{source} have a median channel std of {scale * 1e-6:.3g} V, but EEG is ~1e-5 V: the data were "
            f"likely stored in {unit} where MNE expects volts. Divide by {factor} "
            f"(epochs.apply_function(lambda x: x / {factor})) or set the unit properly in the file."
        )
    if scale < _MIN_STD_UV:
        raise DataError(
            f"{source} have a median channel std of {scale * 1e-6:.3g} V, far below EEG (~1e-5 V): the data "
            "were likely scaled to volts twice. Multiply by 1e6 or set the unit properly in the file."
        )


def _checked_epochs(epochs, what: str):
    if len(epochs) == 0:
        raise DataError(f"{what} holds zero epochs; were they all dropped, rejected or outside the recording?")
    if not epochs.preload:
        epochs.load_data()
    return epochs


def _from_epochs(epochs, what: str, event_id, raw_only):
    """Epochs read or passed as such: refuse the options that only cut raw recordings, select the conditions."""
    given = {name: value for name, value in raw_only.items() if value is not None}
    if given:
        listed = ", ".join(f"{name}={_short_repr(value)}" for name, value in given.items())
        crop = ("; for a shorter window, crop the epochs with MNE beforehand (epochs.crop(tmin=..., tmax=...), then "
                "epochs.save(...))") if {"tmin", "tmax"} & set(given) else ""
        raise ConfigError(
            f"{listed} only {'apply' if len(given) > 1 else 'applies'} when cutting epochs from a raw recording, "
            f"but {what} already holds epochs ({epochs.tmin:.3g} to {epochs.tmax:.3g} s); leave "
            f"{'them' if len(given) > 1 else 'it'} out{crop}."
        )
    return _checked_epochs(_select_conditions(epochs, event_id, what), what)


def _select_conditions(epochs, event_id, what: str):
    """The epochs of the conditions ``event_id`` names; its codes must be those the epochs give the names."""
    if event_id is None:
        return epochs
    conditions = epochs.event_id
    missing = sorted(set(event_id) - set(conditions))
    if missing:
        raise ConfigError(f"event_id names {missing} are not conditions of {what}; its conditions are "
                          f"{conditions} (name: event code).")
    if isinstance(event_id, Mapping):
        wrong = [f"{name!r} is {conditions[name]} there, not {code!r}" for name, code in event_id.items()
                 if code != conditions[name]]
        if wrong:
            raise ConfigError(
                f"event_id {dict(event_id)} contradicts the event codes of {what}, {conditions} "
                f"({'; '.join(wrong)}); conditions are selected by name, so give the file's codes."
            )
    present = set(epochs.events[:, 2].tolist())
    empty = [name for name in event_id if conditions[name] not in present]
    if empty:
        raise DataError(f"event_id names {empty}, but {what} holds no epochs of them (its conditions are "
                        f"{conditions}, with epochs of codes {sorted(present)}); leave them out of event_id.")
    return epochs[list(event_id)]


def _check_intact(path: Path, as_what: str) -> None:
    """Raise if the file is empty, or a FIF / EDF / BDF file is cut short (MNE may read those silently)."""
    if not path.is_file():
        return
    size = path.stat().st_size
    name = path.name.lower()
    if size == 0:
        damage = "it is empty (0 bytes)"
    elif name.endswith((".fif", ".fif.gz")):
        damage = _fif_damage(path, size)
    elif name.endswith((".edf", ".bdf")):
        damage = _edf_damage(path, size, width=3 if name.endswith(".bdf") else 2)
    else:
        damage = None
    if damage:
        raise DataError(f"EEG file {str(path)!r} could not be read{as_what}: {damage}; re-export it (or copy it "
                        "again).")


def _fif_damage(path: Path, size: int) -> str | None:
    """Why a FIF file's tags are broken (a tag past the end, blocks left open), or None if they look whole.

    Walks the tags one after another (each has a 16-byte header: kind, type, data size, next). None too where the
    walk cannot tell (not a FIF file, tags that are not sequential): MNE's reader then gives its reason.
    """
    is_gz = path.name.lower().endswith(".gz")
    pos = depth = 0
    try:
        with (gzip.open(path, "rb") if is_gz else open(path, "rb")) as fid:
            while head := fid.read(16):
                if len(head) < 16:
                    return f"it is truncated or damaged (it ends inside a FIF tag header at byte {pos})"
                kind, _, n_bytes, next_pos = struct.unpack(">iIii", head)
                if (pos == 0 and kind != _FIF_FILE_ID) or next_pos > 0:
                    return None
                if n_bytes < 0 or (not is_gz and pos + 16 + n_bytes > size):
                    return (f"it is truncated or damaged (the FIF tag at byte {pos} runs past the end of the file, "
                            f"{size} bytes)")
                if is_gz and len(fid.read(n_bytes)) < n_bytes:
                    return f"it is truncated or damaged (the FIF tag at byte {pos} runs past the end of the data)"
                if not is_gz:
                    fid.seek(n_bytes, os.SEEK_CUR)
                depth += (kind == _FIF_BLOCK_START) - (kind == _FIF_BLOCK_END)
                pos += 16 + n_bytes
    except (EOFError, gzip.BadGzipFile) as exc:
        return f"it is truncated or damaged ({_reason(exc)})" if isinstance(exc, EOFError) else None
    if depth > 0:
        return f"it is truncated (it ends at byte {pos} inside {depth} unclosed FIF block(s))"
    return None


def _edf_damage(path: Path, size: int, *, width: int) -> str | None:
    """Why an EDF/BDF file is shorter than its header says, or None (also when it is not EDF/BDF at all)."""
    with open(path, "rb") as fid:
        head = fid.read(256)
        if not head.startswith(b"\xffBIOSEMI" if width == 3 else b"0       "):
            return None  # not EDF/BDF: MNE's reader says what is wrong
        try:
            n_records, n_signals = int(head[236:244]), int(head[252:256])
        except ValueError:
            n_records = n_signals = None
        header = 256 * (n_signals + 1) if n_signals is not None and n_signals > 0 else 256
        if size < header:
            return f"it is truncated (it ends at byte {size}, inside its {header}-byte header)"
        if n_signals is None or n_signals < 1:
            return None
        fid.seek(256 + 216 * n_signals)  # the samples per record follow 216 bytes of other fields per signal
        try:
            per_record = sum(int(fid.read(8)) for _ in range(n_signals))
        except ValueError:
            return None
    expected = header + n_records * per_record * width
    if n_records > 0 and size < expected:  # -1 records: a recording not stopped properly; MNE infers the length
        return (f"it is truncated (its header promises {n_records} data records, {expected} bytes, but the file "
                f"has {size} bytes)")
    return None


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
        if name.endswith((".fif", ".fif.gz", ".set")):
            with contextlib.suppress(Exception):  # not epochs either: the raw reader's error is reported below
                if name.endswith(".set"):
                    return mne.read_epochs_eeglab(path, verbose="error")
                return mne.read_epochs(path, preload=True, verbose="error")
        raise DataError(
            f"could not read {str(path)!r} with MNE: {_reason(exc)}. load_epochs reads *-epo.fif and EEGLAB epochs "
            "and the raw recordings mne.io.read_raw supports (.fif, .edf, .bdf, .gdf, .vhdr, .set, ...); is the file "
            "intact?"
        ) from exc


def _epoch_raw(raw, path, events, event_id, tmin, tmax, baseline, picks):
    if tmax is None:
        raise ConfigError(f"tmax is required to cut epochs from the raw recording {str(path)!r}; pass tmax=<seconds>.")
    if isinstance(picks, str) and picks == "eeg" and len(mne.pick_types(raw.info, eeg=True, exclude=())) == 0:
        raise DataError(
            f"no EEG channels in {str(path)!r}: its {len(raw.ch_names)} channels are of types {_type_counts(raw)}; "
            "mark the EEG channels as 'eeg' with MNE (raw.set_channel_types({name: 'eeg', ...}), then raw.save(...) "
            "and load that file), or pass picks=."
        )
    if tmax * raw.info["sfreq"] < tmin * raw.info["sfreq"] + 1:  # fewer than two samples: no signal to classify
        raise ConfigError(f"the window tmin={tmin:g} s to tmax={tmax:g} s holds fewer than two samples at "
                          f"{raw.info['sfreq']:g} Hz; give tmax > tmin (e.g. --tmin 0 --tmax 1).")
    if tmax - tmin > raw.times[-1]:
        raise DataError(f"the window tmin={tmin:g} s to tmax={tmax:g} s is longer than the recording {str(path)!r} "
                        f"({raw.times[-1]:g} s); give --tmin/--tmax in seconds around each event.")
    from_tsv = events is None and _bids_events_into_annotations(raw, path)
    events, event_id = _find_events(raw, path, events, event_id, stim=not from_tsv)
    try:  # on_missing: a class without events here was warned about (load_files refuses one absent everywhere)
        epochs = mne.Epochs(raw, events, event_id, tmin=tmin, tmax=tmax, baseline=baseline, picks=picks,
                            preload=True, on_missing="ignore", verbose="error")
    except Exception as exc:
        raise DataError(f"could not cut epochs from {str(path)!r}: {_reason(exc)}") from exc
    _warn_dropped(epochs, path)
    _warn_overlap(epochs, path)
    epochs.eegrobust_source = str(path)  # epochs cut from a raw recording have no filename: messages name it
    return epochs


#: A BIDS recording's name: ``<entities>_<datatype>.<ext>``; its events lie in ``<entities>_events.tsv`` beside it.
_BIDS_RECORDING = re.compile(r"^(?P<stem>sub-[^/]+?)_(eeg|meg|ieeg)\.[a-z0-9.]+$", re.IGNORECASE)


def _bids_events_into_annotations(raw, path: Path) -> bool:
    """For a BIDS recording (``sub-01_task-mi_eeg.edf``) with an ``_events.tsv`` beside it, make the events of that
    file (onset in seconds from the first sample, duration, ``trial_type``, else ``value``) the recording's
    annotations, as mne-bids does: BIDS keeps the events there, not in the recording, and they take precedence over
    a stim channel (a BDF file's Status channel), with a warning when there is one. Annotations of the recording
    marking bad segments (BAD_...) are kept. Returns whether a sidecar was read."""
    match = _BIDS_RECORDING.match(Path(path).name)
    if match is None:
        return False
    tsv = Path(path).with_name(f"{match['stem']}_events.tsv")
    if not tsv.is_file():
        return False
    import pandas as pd

    try:
        table = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
        onset = pd.to_numeric(table["onset"], errors="raise").to_numpy(float)
    except Exception as exc:  # noqa: BLE001 - any malformed sidecar is one message
        raise DataError(f"could not read the BIDS events file {str(tsv)!r} of {str(path)!r}: {_reason(exc)}; it needs "
                        "tab-separated columns onset, duration and trial_type (or value).") from exc
    column = next((c for c in ("trial_type", "value") if c in table and (table[c] != "n/a").any()), None)
    if column is None:
        raise DataError(f"the BIDS events file {str(tsv)!r} has no trial_type or value column to name its events; "
                        "add one, or give events= (an (n_events, 3) array).")
    duration = (pd.to_numeric(table["duration"], errors="coerce").fillna(0.0).to_numpy(float)
                if "duration" in table else np.zeros(len(table)))
    keep = (table[column] != "n/a").to_numpy()
    bad = np.flatnonzero(keep & (~np.isfinite(onset) | (onset < 0) | (onset > raw.times[-1])))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"the BIDS events file {str(tsv)!r} has onset {table['onset'].iloc[i]!r} in row {i + 2} "
                        f"({len(bad)} such row(s)), outside the recording (0 to {raw.times[-1]:g} s); onsets are "
                        "seconds from the recording's first sample: fix or remove those rows.")
    twice = pd.Series(onset[keep]).duplicated()
    if twice.any():
        at = float(onset[keep][twice.to_numpy()][0])
        raise DataError(f"the BIDS events file {str(tsv)!r} has two events at onset {at:g} s; one trial per onset: "
                        "remove the duplicate row.")
    meas_date = raw.info["meas_date"]
    start = raw.first_time if meas_date is not None else 0.0  # BIDS onsets count from the first sample
    events = mne.Annotations(onset[keep] + start, duration[keep], table[column].to_numpy()[keep], orig_time=meas_date)
    bad = [i for i, d in enumerate(raw.annotations.description) if str(d).upper().startswith("BAD")]
    raw.set_annotations(events + raw.annotations[bad] if bad else events)
    if len(mne.pick_types(raw.info, stim=True, exclude=())):
        warnings.warn(f"{str(path)!r} has a stim channel and a BIDS events file beside it; the events come from "
                      f"{tsv.name}, as BIDS prescribes, not from the stim channel.", stacklevel=4)
    return True


def _warn_dropped(epochs, path) -> None:
    """Warn about events of the chosen classes that gave no epoch (MNE drops them quietly): windows that run
    past the recording's start or end, and windows overlapping a BAD_ annotation."""
    reasons = [r for log in epochs.drop_log for r in log[:1] if r != "IGNORED"]
    if not reasons:
        return
    counts = {}
    for reason in reasons:
        what = ("run past the start or end of the recording" if reason in ("TOO_SHORT", "NO_DATA")
                else f"overlap a {reason} annotation" if reason.upper().startswith("BAD")
                else f"were dropped ({reason})")
        counts[what] = counts.get(what, 0) + 1
    n_events = sum(1 for log in epochs.drop_log if log[:1] != ("IGNORED",))
    detail = "; ".join(f"{n} {what}" for what, n in counts.items())
    warnings.warn(f"{len(reasons)} of {n_events} events in {str(path)!r} gave no epoch: {detail}.", stacklevel=4)


def _warn_overlap(epochs, path) -> None:
    """Warn when windows overlap (events closer than a window): a fold may then test on EEG it trained on."""
    onsets = np.sort(epochs.events[:, 0])
    n_times = len(epochs.times)
    close = int((np.diff(onsets) < n_times).sum()) if len(onsets) > 1 else 0
    if close:
        warnings.warn(f"{close} of {len(onsets)} windows cut from {str(path)!r} overlap the next one (events closer "
                      f"than the {n_times}-sample window): trials in different folds then share EEG samples, and test "
                      "accuracy is optimistic; shorten the window (--tmin/--tmax) or keep events a window apart.",
                      stacklevel=4)


def _find_events(raw, path, events, event_id, stim: bool = True):
    """Events and event_id from ``events``, the stim channel (unless ``stim`` is False: a BIDS events file was
    read) or the annotations, in that order."""
    if events is not None:
        events = np.asarray(events)
        if events.ndim != 2 or events.shape[1] != 3 or not np.issubdtype(events.dtype, np.integer):
            raise ConfigError(f"events must be an int array of shape (n_events, 3), got {events.dtype} {events.shape}.")
        if len(events) == 0:
            raise DataError(f"events for {str(path)!r} is empty (shape {events.shape}); pass at least one event.")
    elif stim and len(mne.pick_types(raw.info, stim=True, exclude=())):
        events = mne.find_events(raw, shortest_event=1, verbose="error")
    if events is not None and len(events):
        if event_id is None:
            event_id = {str(c): int(c) for c in np.unique(events[:, 2])}
        else:
            codes = sorted({int(c) for c in events[:, 2]})
            missing = [f"{name}={code}" for name, code in event_id.items() if code not in codes]
            _missing_classes(missing, len(event_id), path, f"its event codes are {codes}")
        return events, event_id
    query = None if event_id is None else _annotation_query(raw, path, event_id)
    try:
        events, found_id = mne.events_from_annotations(raw, event_id=query, verbose="error")
    except Exception as exc:
        raise DataError(f"could not read events from the annotations of {str(path)!r}: {_reason(exc)}") from exc
    if event_id is not None:  # every class, those without events here too (they keep their label)
        found_id = dict(event_id)
    if len(events) == 0:
        raise DataError(
            f"no events in {str(path)!r}: no stim channel events and no annotations matching event_id={event_id}; "
            "pass events= (an (n_events, 3) array) or event_id= with annotation descriptions."
        )
    return events, found_id


def _annotation_query(raw, path, event_id: dict) -> dict:
    """``event_id`` as annotation descriptions: a name that is a description stays; a name that is not, whose code
    is one (``left=769`` for files that annotate the cue as "769", as GDF and EDF+ recordings of BCI competitions do),
    is looked up by its code; otherwise the error lists the descriptions the file has."""
    found = set(map(str, raw.annotations.description))
    query, missing = {}, []
    for name, code in event_id.items():
        if name in found:
            query[name] = code
        elif str(code) in found:
            query[str(code)] = code
        else:
            missing.append(f"{name}={code}")
    have = sorted(found, key=lambda d: (len(d), d))
    shown = ", ".join(have[:20]) + (f", ... ({len(have)} in all)" if len(have) > 20 else "")
    _missing_classes(missing, len(event_id), path, f"its annotations are: {shown or 'none'} (give NAME=CODE with "
                     "NAME or CODE one of them)", what="annotation")
    return query


def _missing_classes(missing: list, n_classes: int, path, have: str, what: str = "event") -> None:
    """No class of event_id in the file: an error; some: a warning (a subject or session may lack a class; a
    class found in no file is refused by `data.load_files`)."""
    if not missing:
        return
    message = (f"event_id {', '.join(missing)} matches no {what} of {str(path)!r} (neither the name nor the code "
               f"is a description); {have}." if what == "annotation" else
               f"event_id {', '.join(missing)} matches no {what} of {str(path)!r}; {have}.")
    if len(missing) == n_classes:
        raise DataError(message)
    warnings.warn(message.rstrip(".") + "; this file has no trials of that class.", stacklevel=5)


def _describe(epochs) -> str:
    return f"{type(epochs).__name__}, {len(epochs.ch_names)} channels, event_id {epochs.event_id}"


def _short_repr(value) -> str:
    """A value for a one-line message: an array by its shape, anything else by its repr, cut to 60 characters."""
    if isinstance(value, np.ndarray):
        return f"<array of shape {value.shape}>"
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _source(epochs) -> str:
    """How messages name epochs: by the file they were read from, when there is one."""
    filename = getattr(epochs, "filename", None) or getattr(epochs, "eegrobust_source", None)
    return f"the epochs of {str(filename)!r}" if filename else "the epochs"


def _type_counts(inst) -> dict:
    """Channel type -> number of channels, e.g. ``{'misc': 6, 'stim': 1}``."""
    return dict(sorted(Counter(inst.get_channel_types()).items()))


def _reason(exc: BaseException) -> str:
    """One line naming an exception: its type and its message, whitespace collapsed and cut."""
    msg = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 3] + "..."
