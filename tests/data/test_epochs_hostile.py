"""Hostile EEG files against `load_epochs` / `epochs_to_data`: one-line `DataError` / `ConfigError` (CLI exit 2)
that names the file, the option or the channels and says how to fix it; never MNE's own error, never silence.
"""

import gzip
import re
import struct

import mne
import numpy as np
import pytest

from eegrobust.data import ConfigError, DataError, epochs_to_data, load_epochs, make_synthetic_epochs


@pytest.fixture(scope="module")
def epochs():
    """40 trials, 4 channels, classes {'class0': 1, 'class1': 2} (do not modify)."""
    return make_synthetic_epochs(n_trials=40, snr=2.0, random_state=1)


@pytest.fixture(scope="module")
def epo_file(epochs, tmp_path_factory):
    path = tmp_path_factory.mktemp("epo") / "good-epo.fif"
    epochs.save(path, verbose="error")
    return path


@pytest.fixture(scope="module")
def raw_file(epochs, tmp_path_factory):
    """The epochs laid end to end in a raw recording with a stim channel (events 1 and 2)."""
    X = epochs.get_data()
    n_trials, n_chans, n_times = X.shape
    data = np.zeros((n_chans + 1, (n_trials + 1) * n_times))
    for i, x in enumerate(X):
        data[:n_chans, (i + 1) * n_times:(i + 2) * n_times] = x
        data[-1, (i + 1) * n_times] = epochs.events[i, 2]
    info = mne.create_info([*epochs.ch_names, "STI 014"], epochs.info["sfreq"], ["eeg"] * n_chans + ["stim"])
    path = tmp_path_factory.mktemp("raw") / "rec_raw.fif"
    mne.io.RawArray(data, info, verbose="error").save(path, verbose="error")
    return path


def _raises(error, pattern, fn, *args, **kwargs):
    """Call ``fn``; it must raise ``error`` with a one-line message matching ``pattern``; return the message."""
    with pytest.raises(error, match=pattern) as excinfo:
        fn(*args, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert "Traceback" not in message
    return message


def _fif_tag_ends(data: bytes) -> list[int]:
    """Byte offsets where each FIF tag ends (16-byte headers: kind, type, size, next; big-endian)."""
    ends, pos = [], 0
    while pos < len(data):
        pos += 16 + struct.unpack(">iIii", data[pos:pos + 16])[2]
        ends.append(pos)
    return ends


# -- 1. empty and truncated files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fname, as_what", [("empty-epo.fif", " as epochs"), ("empty_epo.fif.gz", " as epochs"),
                                            ("empty.fif", ""), ("empty.edf", ""), ("empty.bdf", ""),
                                            ("empty.set", "")])
def test_empty_file(tmp_path, fname, as_what):
    path = tmp_path / fname
    path.write_bytes(b"")
    pattern = re.escape(f"EEG file {str(path)!r} could not be read{as_what}: it is empty (0 bytes); re-export it")
    _raises(DataError, pattern, load_epochs, path, tmax=0.5)


@pytest.mark.parametrize("fname, as_what", [("half-epo.fif", " as epochs"), ("half.fif", "")])
def test_truncated_epochs_file(epo_file, tmp_path, fname, as_what):
    data = epo_file.read_bytes()
    path = tmp_path / fname
    path.write_bytes(data[: len(data) // 2])
    message = _raises(DataError, re.escape(f"EEG file {str(path)!r} could not be read{as_what}: it is truncated"),
                      load_epochs, path)
    assert "runs past the end of the file" in message and "re-export it" in message
    assert "AttributeError" not in message and "scalar" not in message  # not MNE's own words


def test_epochs_file_cut_at_a_tag_boundary(epo_file, tmp_path):
    """MNE reads an epochs file whose last tags are missing without complaint; the unclosed blocks show it."""
    data = epo_file.read_bytes()
    path = tmp_path / "cut-epo.fif"
    path.write_bytes(data[: _fif_tag_ends(data)[-3]])  # without the last block end and the closing no-op tag
    _raises(DataError, r"could not be read as epochs: it is truncated \(it ends at byte \d+ inside 1 unclosed FIF",
            load_epochs, path)


def test_truncated_raw_fif(raw_file, tmp_path):
    data = raw_file.read_bytes()
    path = tmp_path / "half_raw.fif"
    path.write_bytes(data[: len(data) // 2])
    _raises(DataError, re.escape(f"EEG file {str(path)!r} could not be read: it is truncated or damaged"),
            load_epochs, path, tmax=0.5)
    # Cut between two data buffers, MNE reads a shorter recording and says nothing: refused as well.
    ends = _fif_tag_ends(data)
    path.write_bytes(data[: ends[len(ends) // 2]])
    _raises(DataError, r"half_raw\.fif' could not be read: it is truncated \(it ends at byte \d+ inside \d+ unclosed",
            load_epochs, path, tmax=0.5)


def test_truncated_gzipped_epochs(epo_file, tmp_path):
    packed = gzip.compress(epo_file.read_bytes())
    path = tmp_path / "cut-epo.fif.gz"
    path.write_bytes(packed[: len(packed) // 2])
    _raises(DataError, r"cut-epo\.fif\.gz' could not be read as epochs: it is truncated or damaged \(EOFError",
            load_epochs, path)
    path.write_bytes(packed)
    assert len(load_epochs(path)) == 40


def test_truncated_edf(raw_file, tmp_path):
    pytest.importorskip("edfio")
    full = tmp_path / "rec.edf"
    raw = mne.io.read_raw_fif(raw_file, preload=True, verbose="error")
    events = mne.find_events(raw, verbose="error")
    raw.drop_channels(["STI 014"]).set_annotations(mne.Annotations(events[:, 0] / raw.info["sfreq"], 0.0, "x"))
    mne.export.export_raw(full, raw, verbose="error")
    data = full.read_bytes()
    path = tmp_path / "half.edf"
    path.write_bytes(data[: len(data) // 2])
    message = _raises(DataError, re.escape(f"EEG file {str(path)!r} could not be read: it is truncated (its header "
                                           "promises"), load_epochs, path, tmax=0.5)
    assert f"the file has {len(data) // 2} bytes" in message
    path.write_bytes(data[:300])
    _raises(DataError, r"half\.edf' could not be read: it is truncated \(it ends at byte 300, inside its \d+-byte "
            r"header\)", load_epochs, path, tmax=0.5)
    # A header that gives -1 records (a recording not stopped properly): MNE infers the length, so it loads.
    patched = bytearray(data)
    patched[236:244] = b"-1      "
    path.write_bytes(bytes(patched))
    assert len(load_epochs(path, tmax=0.5)) == len(load_epochs(full, tmax=0.5))


def test_intact_files_still_load(epo_file, raw_file, tmp_path):
    assert len(load_epochs(epo_file)) == 40
    assert len(load_epochs(raw_file, tmax=127 / 128)) == 40


# -- 2. tmin / tmax (and the other raw-only options) given for epochs -------------------------------------------------
@pytest.mark.parametrize("kwargs, listed", [({"tmin": 0.1, "tmax": 0.5}, "tmin=0.1, tmax=0.5 only apply"),
                                            ({"tmin": 0.0}, "tmin=0.0 only applies"),
                                            ({"tmax": 0.5}, "tmax=0.5 only applies")])
def test_tmin_tmax_refused_for_epochs_file(epo_file, kwargs, listed):
    message = _raises(ConfigError, re.escape(f"{listed} when cutting epochs from a raw recording, but "
                                             f"{str(epo_file)!r} already holds epochs (0 to 0.992 s)"),
                      load_epochs, epo_file, **kwargs)
    assert "epochs.crop(" in message


def test_raw_only_options_refused_for_epochs(epochs, epo_file):
    events = epochs.events
    message = _raises(ConfigError, r"events=<array of shape \(40, 3\)>, baseline=\(None, 0\) only apply when "
                      r"cutting epochs from a raw recording", load_epochs, epo_file, events=events, baseline=(None, 0))
    assert "leave them out" in message and "crop" not in message
    _raises(ConfigError, r"picks=\['EEG000'\] only applies .* leave it out", load_epochs, epo_file, picks=["EEG000"])
    _raises(ConfigError, r"tmax=0\.5 only applies .* but the epochs passed \(EpochsArray", load_epochs, epochs,
            tmax=0.5)
    assert load_epochs(epo_file, picks="eeg").ch_names == epochs.ch_names  # the default, given explicitly


def test_tmin_tmax_refused_for_eeglab_epochs(epochs, tmp_path):
    pytest.importorskip("eeglabio")
    named = epochs.copy().rename_channels(dict(zip(epochs.ch_names, ["C3", "C4", "Cz", "Pz"], strict=True)))
    path = tmp_path / "x.set"
    mne.export.export_epochs(path, named, fmt="eeglab", verbose="error")
    assert len(load_epochs(path)) == 40
    _raises(ConfigError, re.escape(f"tmin=-0.2, tmax=0.5 only apply when cutting epochs from a raw recording, but "
                                   f"{str(path)!r} already holds epochs"), load_epochs, path, tmin=-0.2, tmax=0.5)


def test_raw_recording_tmin_defaults_to_zero(raw_file):
    default = load_epochs(raw_file, tmax=127 / 128)
    explicit = load_epochs(raw_file, tmin=0.0, tmax=127 / 128)
    assert default.tmin == 0.0 and default.times.shape == (128,)
    np.testing.assert_array_equal(default.get_data(), explicit.get_data())
    shifted = load_epochs(raw_file, tmin=-0.25, tmax=0.5)
    assert shifted.tmin == -0.25


# -- 3. event_id that contradicts the epochs' own codes -------------------------------------------------------------
@pytest.mark.parametrize("event_id, wrong", [
    ({"class0": 2, "class1": 1}, "'class0' is 1 there, not 2; 'class1' is 2 there, not 1"),
    ({"class0": 7}, "'class0' is 1 there, not 7"),
    ({"class0": 1, "class1": "2"}, "'class1' is 2 there, not '2'"),
])
def test_event_id_codes_contradict_the_file(epo_file, event_id, wrong):
    _raises(ConfigError, re.escape(f"event_id {event_id} contradicts the event codes of {str(epo_file)!r}, "
                                   f"{{'class0': 1, 'class1': 2}} ({wrong}); conditions are selected by name"),
            load_epochs, epo_file, event_id=event_id)


def test_event_id_names_not_in_the_file(epo_file):
    _raises(ConfigError, re.escape(f"event_id names ['left', 'right'] are not conditions of {str(epo_file)!r}; its "
                                   "conditions are {'class0': 1, 'class1': 2}"),
            load_epochs, epo_file, event_id={"left": 1, "right": 2})


def test_event_id_matching_the_file_selects(epo_file):
    assert len(load_epochs(epo_file, event_id={"class0": 1, "class1": 2})) == 40
    assert len(load_epochs(epo_file, event_id={"class1": 2})) == 20
    assert len(load_epochs(epo_file, event_id=["class0", "class1"])) == 40  # names only: no codes to compare


def test_event_id_condition_without_epochs(tmp_path):
    """A condition in the file's event_id with no trial: selecting it used to drop it silently (one class left)."""
    rng = np.random.default_rng(0)
    events = np.column_stack([np.arange(10) * 100, np.zeros(10, int), [1, 2] * 5])
    epochs = mne.EpochsArray(rng.normal(size=(10, 2, 50)) * 1e-5, mne.create_info(2, 100.0, "eeg"), events,
                             event_id={"a": 1, "b": 2, "c": 3}, on_missing="ignore", verbose="error")
    path = tmp_path / "unused-epo.fif"
    epochs.save(path, verbose="error")
    _raises(DataError, re.escape(f"event_id names ['c'], but {str(path)!r} holds no epochs of them"),
            load_epochs, path, event_id={"a": 1, "c": 3})


# -- 4. no EEG channels ---------------------------------------------------------------------------------------------
def test_epochs_file_without_eeg_channels(tmp_path):
    epochs = make_synthetic_epochs(n_trials=40, n_chans=6, snr=2.0, random_state=1)
    epochs.set_channel_types({name: "misc" for name in epochs.ch_names}, verbose="error")
    path = tmp_path / "misc-epo.fif"
    epochs.save(path, verbose="error")
    message = _raises(DataError, re.escape(f"the epochs of {str(path)!r} have no EEG channels: their 6 channels are "
                                           "of types {'misc': 6}; mark the EEG channels as 'eeg' with MNE"),
                      epochs_to_data, load_epochs(path))
    assert "set_channel_types({name: 'eeg', ...})" in message


def test_raw_file_without_eeg_channels(epochs, raw_file, tmp_path):
    raw = mne.io.read_raw_fif(raw_file, preload=True, verbose="error")
    raw.set_channel_types({name: "misc" for name in epochs.ch_names}, verbose="error")
    path = tmp_path / "misc_raw.fif"
    raw.save(path, verbose="error")
    message = _raises(DataError, re.escape(f"no EEG channels in {str(path)!r}: its 5 channels are of types "
                                           "{'misc': 4, 'stim': 1}; mark the EEG channels as 'eeg'"),
                      load_epochs, path, tmax=0.5)
    assert "pass the Raw" not in message  # load_epochs takes no Raw


# -- 5. amplitudes that are not EEG in any unit ---------------------------------------------------------------------
@pytest.mark.parametrize("peak", [1e10, 1e30])
def test_absurd_amplitudes(epochs, tmp_path, peak):
    scaled = epochs.copy()
    scaled._data *= peak / np.abs(scaled._data).max()
    path = tmp_path / "absurd-epo.fif"
    scaled.save(path, verbose="error")
    message = _raises(DataError, re.escape(f"the epochs of {str(path)!r} hold values up to {peak:.3g} in absolute "
                                           f"value, which is {peak * 1e-9:.3g} V even if they were nanovolts: not "
                                           "EEG in volts, microvolts or nanovolts"), epochs_to_data, load_epochs(path))
    assert "corrupt or wrongly scaled" in message and "stored in microvolts" not in message


@pytest.mark.parametrize("peak, unit, factor", [(50.0, "microvolts", "1e6"), (5000.0, "microvolts", "1e6"),
                                               (1e5, "nanovolts", "1e9"), (5e7, "nanovolts", "1e9")])
def test_microvolts_or_nanovolts_written_as_volts_are_told_apart(epochs, tmp_path, peak, unit, factor):
    """The median channel std of the synthetic epochs is about a fifth of their peak: EEG of ~10 uV std stored in
    microvolts has a std of ~10, in nanovolts ~1e4 (an artefact peak of 1 mV is 1e6 nV, not corrupt)."""
    scaled = epochs.copy()
    scaled._data *= peak / np.abs(scaled._data).max()
    path = tmp_path / "uv-epo.fif"
    scaled.save(path, verbose="error")
    message = _raises(DataError, re.escape(f"the epochs of {str(path)!r} have a median channel std of"),
                      epochs_to_data, load_epochs(path))
    assert f"likely stored in {unit} where MNE expects volts. Divide by {factor}" in message


def test_one_absurd_sample_in_good_data(epochs):
    broken = epochs.copy()
    broken._data[3, 1, 7] = -1e30
    _raises(DataError, r"the epochs hold values up to 1e\+30 in absolute value", epochs_to_data, broken)


# -- 6. files that cannot be combined, and one file named twice ------------------------------------------------------
def test_windows_that_start_elsewhere_are_not_combined(epochs, tmp_path):
    """Same channels, rate and length, but one window starts 0.5 s before its events: refused, naming both starts."""
    from eegrobust.data import load_files

    epochs.save(tmp_path / "sub-01_epo.fif", verbose="error")
    epochs.copy().shift_time(-0.5).save(tmp_path / "sub-02_epo.fif", verbose="error")
    _raises(DataError, r"subject '02' .* windows starting at -0\.5 s relative to its events but subject '01' .* at "
                       r"0 s; data to combine must share the window", load_files, str(tmp_path / "sub-*_epo.fif"))
    epochs.copy().shift_time(0.5 / epochs.info["sfreq"] / 2).save(tmp_path / "sub-02_epo.fif", verbose="error",
                                                                  overwrite=True)
    assert load_files(str(tmp_path / "sub-*_epo.fif")).n_trials == 2 * len(epochs)  # within half a sample: same


def test_one_file_under_two_spellings_is_read_once(epochs, tmp_path, monkeypatch):
    from eegrobust.data import load_files

    epochs.save(tmp_path / "sub-01_epo.fif", verbose="error")
    (tmp_path / "link_epo.fif").symlink_to(tmp_path / "sub-01_epo.fif")
    monkeypatch.chdir(tmp_path)
    data = load_files(["sub-01_epo.fif", "./sub-01_epo.fif", str(tmp_path / "sub-01_epo.fif"), "link_epo.fif"])
    assert data.n_trials == len(epochs)
