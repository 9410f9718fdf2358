import re
from pathlib import Path

import mne
import numpy as np
import pytest

from eegrobust.data import ConfigError, DataError, epochs_to_data, load_epochs, make_synthetic_epochs, to_microvolts
from eegrobust.data.datasets import load_files


def _as_raw(epochs, *, stim=True, gap=32):
    """Lay epochs end to end, ``gap`` samples apart, as a Raw; events on a stim channel or as annotations."""
    X = epochs.get_data()
    n_trials, n_chans, n_times = X.shape
    step = n_times + gap
    data = np.zeros((n_chans + stim, gap + n_trials * step))
    onsets = gap + np.arange(n_trials) * step
    for x, onset in zip(X, onsets, strict=True):
        data[:n_chans, onset:onset + n_times] = x
    codes = epochs.events[:, 2]
    ch_names, ch_types = list(epochs.ch_names), ["eeg"] * n_chans
    if stim:
        data[-1, onsets] = codes
        ch_names, ch_types = ch_names + ["STI 014"], ch_types + ["stim"]
    raw = mne.io.RawArray(data, mne.create_info(ch_names, epochs.info["sfreq"], ch_types), verbose="error")
    if not stim:
        names = {code: name for name, code in epochs.event_id.items()}
        raw.set_annotations(mne.Annotations(onsets / raw.info["sfreq"], 0.0, [names[c] for c in codes]))
    return raw, np.column_stack([onsets, np.zeros(n_trials, int), codes])


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value)


def test_to_microvolts():
    np.testing.assert_allclose(to_microvolts(np.array([1e-6, -2e-5])), [1.0, -20.0])
    assert to_microvolts(np.array([1, 2])).dtype == np.float64


def test_load_epochs_passes_epochs_through(synth_epochs):
    assert load_epochs(synth_epochs) is synth_epochs


def test_epochs_to_data_matches_synthetic(synth_epochs, synth):
    np.testing.assert_allclose(synth.X, synth_epochs.get_data() * 1e6, rtol=1e-6)
    np.testing.assert_array_equal(synth.y, synth_epochs.events[:, 2] - 1)
    assert synth.ch_names == tuple(synth_epochs.ch_names)


def test_classes_ordered_by_code():
    epochs = make_synthetic_epochs(n_trials=8)
    epochs.event_id = {"zeta": 1, "alpha": 2}
    data = epochs_to_data(epochs)
    assert data.classes == ("zeta", "alpha")
    np.testing.assert_array_equal(data.y, epochs.events[:, 2] - 1)


def test_epochs_to_data_keeps_only_eeg(synth_epochs):
    epochs = synth_epochs.copy().set_channel_types({"EEG003": "misc"}, verbose="error")
    data = epochs_to_data(epochs)
    assert data.ch_names == ("EEG000", "EEG001", "EEG002")


@pytest.mark.parametrize("fname", ["s-epo.fif", "s_epo.fif", "plain.fif"])
def test_fif_epochs_round_trip(synth_epochs, synth, tmp_path, fname):
    path = tmp_path / fname
    synth_epochs.save(path, verbose="error")
    for source in (path, str(path)):
        epochs = load_epochs(source)
        assert epochs.preload and len(epochs) == 48
        data = epochs_to_data(epochs)
        np.testing.assert_allclose(data.X, synth.X, rtol=1e-5, atol=1e-4)  # saved in single precision
        np.testing.assert_array_equal(data.y, synth.y)
        assert data.classes == synth.classes and data.sfreq == synth.sfreq


def test_event_id_selects_conditions(tmp_path):
    epochs = make_synthetic_epochs(n_trials=30, n_classes=3)
    path = tmp_path / "three-epo.fif"
    epochs.save(path, verbose="error")
    data = epochs_to_data(load_epochs(path, event_id={"class0": 1, "class2": 3}))
    assert data.classes == ("class0", "class2") and data.n_trials == 20
    with pytest.raises(ConfigError, match=r"event_id names \['class9'\] are not conditions"):
        load_epochs(path, event_id={"class9": 10})


def test_raw_fif_with_stim_channel(synth_epochs, synth, tmp_path):
    raw, _ = _as_raw(synth_epochs, stim=True)
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose="error")
    tmax = (synth.n_times - 1) / synth.sfreq
    data = epochs_to_data(load_epochs(path, tmax=tmax, event_id={"left": 1, "right": 2}))
    assert data.classes == ("left", "right") and data.ch_names == synth.ch_names  # stim channel dropped
    np.testing.assert_allclose(data.X, synth.X, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(data.y, synth.y)
    # Without event_id, classes are named after the codes.
    assert epochs_to_data(load_epochs(str(path), tmax=tmax)).classes == ("1", "2")


def test_raw_with_explicit_events(synth_epochs, synth, tmp_path):
    raw, events = _as_raw(synth_epochs, stim=False)
    raw.set_annotations(None)
    path = tmp_path / "noevents_raw.fif"
    raw.save(path, verbose="error")
    data = epochs_to_data(load_epochs(path, events=events, tmax=(synth.n_times - 1) / synth.sfreq))
    np.testing.assert_allclose(data.X, synth.X, rtol=1e-5, atol=1e-4)
    with pytest.raises(DataError, match=r"no events in .*noevents_raw\.fif.*pass events=") as excinfo:
        load_epochs(path, tmax=0.5)
    _one_line(excinfo)
    with pytest.raises(ConfigError, match=r"events must be an int array of shape \(n_events, 3\), got .*\(48,\)"):
        load_epochs(path, events=events[:, 0], tmax=0.5)
    with pytest.raises(DataError, match=r"events for .*noevents_raw\.fif.* is empty \(shape \(0, 3\)\)"):
        load_epochs(path, events=events[:0], tmax=0.5)


def test_annotations_named_by_their_codes(synth_epochs, synth, tmp_path):
    """GDF/EDF+ recordings of BCI competitions annotate cues by code ("769"): left=769 finds them by the code,
    names the classes, and keeps their codes; a pair matching nothing lists the file's descriptions."""
    raw, _ = _as_raw(synth_epochs, stim=False)
    codes = {"class0": "769", "class1": "770"}
    raw.annotations.rename(codes)
    path = tmp_path / "cues_raw.fif"
    raw.save(path, verbose="error")
    tmax = (synth.n_times - 1) / synth.sfreq
    epochs = load_epochs(path, tmax=tmax, event_id={"left": 769, "right": 770})
    assert epochs.event_id == {"left": 769, "right": 770}
    data = epochs_to_data(epochs)
    assert data.classes == ("left", "right")
    np.testing.assert_array_equal(data.y, synth.y)
    # descriptions still work as names, alone or mixed with codes
    assert epochs_to_data(load_epochs(path, tmax=tmax, event_id={"769": 1, "right": 770})).classes == ("769", "right")
    # a class this file lacks: a warning listing the descriptions, and the class keeps its label (no trials)
    with pytest.warns(UserWarning, match=r"event_id feet=771 matches no annotation of .*cues_raw\.fif.*its "
                                         r"annotations are: 769, 770 \(give NAME=CODE.*no trials of that class"):
        data = epochs_to_data(load_epochs(path, tmax=tmax, event_id={"left": 769, "right": 770, "feet": 771}))
    assert data.classes == ("left", "right", "feet") and set(data.y) == {0, 1}
    # in no file at all: refused (a typo or a wrong code)
    with pytest.raises(DataError, match=r"event_id feet=771 matches no event in any of the 1 file\(s\)") as excinfo:
        with pytest.warns(UserWarning):
            load_files(path, tmax=tmax, event_id={"left": 769, "right": 770, "feet": 771})
    _one_line(excinfo)
    with pytest.raises(DataError, match=r"event_id up=1, down=2 matches no annotation of .*cues_raw\.fif.*its "
                                        r"annotations are: 769, 770 \(give NAME=CODE") as excinfo:
        load_epochs(path, tmax=tmax, event_id={"up": 1, "down": 2})
    _one_line(excinfo)


def test_channels_named_as_eog_emg_or_ecg_are_not_eeg(synth_epochs, synth):
    """GDF/EDF files carry no channel types: BCI Competition IV's EOG-left/-central/-right arrive typed EEG. They are
    left out of the EEG channels with a warning that names them; a file of such channels only is taken as given."""
    epochs = synth_epochs.copy().rename_channels({"EEG002": "EOG-left", "EEG003": "vEOG"})
    with pytest.warns(UserWarning, match=r"channel\(s\) EOG-left, vEOG are typed EEG but named as EOG/EMG/ECG"):
        data = epochs_to_data(epochs)
    assert "EOG-left" not in data.ch_names and "vEOG" not in data.ch_names
    assert data.n_chans == synth.n_chans - 2
    np.testing.assert_allclose(data.X, synth.X[:, [i for i, n in enumerate(synth.ch_names)
                                                   if n not in ("EEG002", "EEG003")]], rtol=1e-6)
    names = {n: f"EOG{i}" for i, n in enumerate(synth_epochs.ch_names)}
    assert epochs_to_data(synth_epochs.copy().rename_channels(names)).n_chans == synth.n_chans


def test_edf_with_annotations(synth_epochs, synth, tmp_path):
    pytest.importorskip("edfio")
    raw, _ = _as_raw(synth_epochs, stim=False)
    path = tmp_path / "rec.edf"
    mne.export.export_raw(path, raw, verbose="error")
    data = epochs_to_data(load_epochs(path, tmax=(synth.n_times - 1) / synth.sfreq))
    assert data.classes == ("class0", "class1")
    np.testing.assert_array_equal(data.y, synth.y)
    np.testing.assert_allclose(data.X, synth.X, atol=0.05)  # EDF stores 16-bit integers


# ----------------------------------------------------------------------------------------------------------------
# Bad input: one-line errors that name the value and the fix.


def test_missing_path(tmp_path):
    path = tmp_path / "nope-epo.fif"
    with pytest.raises(DataError, match=re.escape(repr(str(path))) + " does not exist") as excinfo:
        load_epochs(path)
    _one_line(excinfo)


@pytest.mark.parametrize(
    "fname, reason",
    [("junk-epo.fif", "does not start with a file id tag"), ("junk.edf", "Bad EDF file"),
     ("junk.fif", "does not start with a file id tag"), ("junk.xyz", "Unsupported file type")],
)
def test_unreadable_file(tmp_path, fname, reason):
    path = tmp_path / fname
    path.write_bytes(b"this is not EEG\n" * 20)
    with pytest.raises(DataError, match=rf"could not read .*{re.escape(fname)}.*{reason}") as excinfo:
        load_epochs(path, tmax=1.0)
    _one_line(excinfo)


def test_source_type():
    with pytest.raises(TypeError, match="source must be an mne.Epochs or a path .* got int"):
        load_epochs(3)


def test_raw_needs_tmax(synth_epochs, tmp_path):
    path = tmp_path / "rec_raw.fif"
    _as_raw(synth_epochs)[0].save(path, verbose="error")
    with pytest.raises(ConfigError, match=r"tmax is required .*rec_raw\.fif.*pass tmax="):
        load_epochs(path)


def test_nan_values(synth_epochs):
    epochs = synth_epochs.copy()
    epochs._data[3, 1, 5:7] = np.nan
    epochs._data[9, 0, 0] = np.inf
    with pytest.raises(DataError, match=r"3 NaN/Inf values \(first in trial 3\); drop or interpolate") as excinfo:
        epochs_to_data(epochs)
    _one_line(excinfo)


def test_nan_values_name_the_file(synth_epochs, tmp_path):
    """A NaN gap in one subject's recording: the message names that file (a study loads many) and the way out."""
    raw, _ = _as_raw(synth_epochs, stim=True)
    raw._data[0, 40:50] = np.nan  # inside the first window
    path = tmp_path / "sub-02_task-x_eeg.fif"
    raw.save(path, verbose="error")
    with pytest.raises(DataError, match=r"data of the epochs of .*sub-02_task-x_eeg\.fif.* contains \d+ NaN/Inf values"
                                        r".*annotate the segment as BAD_") as excinfo:
        epochs_to_data(load_epochs(path, tmax=0.5))
    _one_line(excinfo)


def test_single_class(synth_epochs):
    epochs = synth_epochs["class1"]
    with pytest.raises(DataError, match=r"1 class\(es\) \['class1'\].*needs at least two") as excinfo:
        epochs_to_data(epochs)
    _one_line(excinfo)


def test_zero_epochs(synth_epochs):
    empty = synth_epochs.copy().drop(np.arange(len(synth_epochs)), verbose="error")
    with pytest.raises(DataError, match="zero epochs") as excinfo:
        load_epochs(empty)
    _one_line(excinfo)
    with pytest.raises(DataError, match="zero epochs"):
        epochs_to_data(empty)


def test_raw_events_outside_recording(synth_epochs, tmp_path):
    raw, events = _as_raw(synth_epochs, stim=False)
    path = tmp_path / "short_raw.fif"
    raw.save(path, verbose="error")
    longer = r"window tmin=0 s to tmax=1000 s is longer than the recording .*short_raw\.fif"
    with pytest.raises(DataError, match=longer) as excinfo:  # it asked numpy for terabytes before (--tmax 1e9)
        load_epochs(path, events=events, tmax=1000.0)
    _one_line(excinfo)
    late = events.copy()
    late[:, 0] += raw.n_times  # every event past the end: no epoch at all
    with pytest.raises(DataError, match=r"short_raw\.fif.*zero epochs"), pytest.warns(UserWarning, match="gave no epoch"):
        load_epochs(path, events=late, tmax=0.5)


def test_overlapping_windows_are_named(synth_epochs, tmp_path):
    """Events 1 s apart cut into 1.5 s windows: trials share samples, so folds would test on EEG they trained on."""
    raw, events = _as_raw(synth_epochs, stim=False)
    path = tmp_path / "dense_raw.fif"
    raw.save(path, verbose="error")
    step = int(np.diff(events[:, 0]).min())
    with pytest.warns(UserWarning, match=r"\d+ of \d+ windows cut from .*dense_raw\.fif.* overlap the next one"):
        load_epochs(path, events=events, tmax=1.5 * step / raw.info["sfreq"])


def test_raw_event_id_not_found(synth_epochs, tmp_path):
    path = tmp_path / "rec_raw.fif"
    _as_raw(synth_epochs)[0].save(path, verbose="error")
    with pytest.warns(UserWarning, match=r"event_id b=7 matches no event of .*rec_raw\.fif.*; its event codes "
                                         r"are \[1, 2\]; this file has no trials of that class"):
        load_epochs(path, tmax=0.5, event_id={"a": 1, "b": 7})
    with pytest.raises(DataError, match=r"event_id b=7, c=8 matches no event of .*rec_raw\.fif.*codes are \[1, 2\]"
                       ) as excinfo:
        load_epochs(path, tmax=0.5, event_id={"b": 7, "c": 8})
    _one_line(excinfo)


def test_events_that_give_no_epoch_are_named(synth_epochs, tmp_path):
    """MNE drops epochs that run past the recording or overlap a BAD_ annotation without a word; the loader says
    how many and why."""
    raw, _ = _as_raw(synth_epochs, stim=False)
    onsets = raw.annotations.onset
    bad = mne.Annotations([onsets[1] + 0.01], [0.05], ["BAD_muscle"], orig_time=raw.annotations.orig_time)
    raw.set_annotations(raw.annotations + bad)
    path = tmp_path / "gaps_raw.fif"
    raw.save(path, verbose="error")
    n_events = len(onsets)
    tmax = raw.times[-1] - onsets[-1] + 0.5  # the last window runs past the end
    with pytest.warns(UserWarning, match=rf"[2-9] of {n_events} events in .*gaps_raw\.fif.* gave no epoch: "
                                         r"(?=.*1 run past the start or end of the recording)"
                                         r"(?=.*[12] overlap a BAD_muscle annotation)"):
        epochs = load_epochs(path, tmax=tmax)
    assert len(epochs) < n_events - 1


def test_no_eeg_channels(synth_epochs, tmp_path):
    epochs = synth_epochs.copy().set_channel_types({n: "misc" for n in synth_epochs.ch_names}, verbose="error")
    with pytest.raises(DataError, match=r"no EEG channels.*\{'misc': 4\}.*set_channel_types") as excinfo:
        epochs_to_data(epochs)
    _one_line(excinfo)
    raw, _ = _as_raw(synth_epochs)
    raw.set_channel_types({n: "misc" for n in synth_epochs.ch_names}, verbose="error")
    path = tmp_path / "misc_raw.fif"
    raw.save(path, verbose="error")
    with pytest.raises(DataError, match=r"no EEG channels in .*misc_raw\.fif.*set_channel_types") as excinfo:
        load_epochs(path, tmax=0.5)
    _one_line(excinfo)


def test_microvolts_stored_as_volts(synth_epochs):
    epochs = synth_epochs.copy()
    epochs._data *= 1e6  # µV written where MNE expects volts
    match = r"std of [\d.]+ V, but EEG is ~1e-5 V.*likely stored in microvolts.*Divide by 1e6"
    with pytest.raises(DataError, match=match) as excinfo:
        epochs_to_data(epochs)
    _one_line(excinfo)


def test_volts_scaled_twice(synth_epochs):
    epochs = synth_epochs.copy()
    epochs._data *= 1e-6
    with pytest.raises(DataError, match=r"std of [\d.]+e-11 V.*Multiply by 1e6"):
        epochs_to_data(epochs)


def test_constant_data(synth_epochs):
    epochs = synth_epochs.copy()
    epochs._data[:] = 0.0
    with pytest.raises(DataError, match="constant"):
        epochs_to_data(epochs)


def test_epochs_to_data_type():
    with pytest.raises(TypeError, match="epochs must be an mne.Epochs, got ndarray"):
        epochs_to_data(np.zeros((2, 2, 2)))


def test_bundled_path_is_package_data():
    import eegrobust.data.bundled
    from eegrobust.data import bundled_names

    folder = Path(eegrobust.data.bundled.__file__).parent
    expected = sorted(f"{name}_{part}-epo.fif" for name in bundled_names() for part in ("train", "test"))
    assert {"scp1", "finger"} <= set(bundled_names())
    assert sorted(p.name for p in folder.glob("*-epo.fif")) == expected


def _swapped_codes(epochs):
    """The same trials with the event codes of the two classes swapped: {"a": 2, "b": 1} instead of {"a": 1, ...}."""
    swapped = epochs.copy()
    swapped.events[:, 2] = 3 - swapped.events[:, 2]
    swapped.event_id = {"a": 2, "b": 1}
    return swapped


def test_labels_by_name_not_by_code():
    epochs = make_synthetic_epochs(n_trials=12, random_state=1)
    epochs.event_id = {"a": 1, "b": 2}
    swapped = _swapped_codes(epochs)
    plain, other = epochs_to_data(epochs), epochs_to_data(swapped)
    assert other.classes == ("b", "a")  # event-code order
    np.testing.assert_array_equal(plain.relabel(("a", "b")).y, other.relabel(("a", "b")).y)
    np.testing.assert_array_equal(epochs_to_data(swapped, classes=("a", "b")).y, plain.y)
    assert epochs_to_data(swapped, classes=("a", "b")).classes == ("a", "b")


def test_classes_keyword_errors():
    epochs = make_synthetic_epochs(n_trials=8)
    with pytest.raises(DataError, match=r"the data's classes \('class0', 'class1'\) are not all in \('class0', 'x'\)"):
        epochs_to_data(epochs, classes=("class0", "x"))


def test_epochs_metadata_kept():
    import pandas as pd

    epochs = make_synthetic_epochs(n_trials=8)
    epochs.metadata = pd.DataFrame({"subject": [7] * 4 + [8] * 4, "session": ["s1"] * 8, "rt": np.arange(8.0)})
    data = epochs_to_data(epochs)
    assert data.subjects == ("7", "8")
    assert set(data.metadata["session"]) == {"s1"} and list(data.metadata["run"]) == ["0"] * 8
    assert list(data.metadata["rt"]) == list(np.arange(8.0))
    part = epochs_to_data(epochs[[1, 2, 5, 6]])
    assert list(part.metadata["rt"]) == [1.0, 2.0, 5.0, 6.0] and list(part.metadata.index) == [0, 1, 2, 3]


def test_epochs_without_metadata_get_defaults(synth):
    assert list(synth.metadata.columns[:4]) == ["subject", "session", "run", "is_synthetic"]
    assert synth.subjects == ("1",)


def test_eeglab_epochs_file_is_read_as_epochs(synth_epochs, tmp_path):
    """An epoched EEGLAB .set (which mne.io.read_raw refuses) is read with MNE's EEGLAB epochs reader: the same
    microvolts and, trial by trial, the same class names (MNE's export renumbers the event codes)."""
    import mne

    epochs = synth_epochs.copy().rename_channels(dict(zip(synth_epochs.ch_names, ["C3", "C4", "Cz", "Pz"])))
    epochs.set_montage("standard_1005")
    mne.export.export_epochs(tmp_path / "x.set", epochs, fmt="eeglab", overwrite=True)
    got, want = epochs_to_data(load_epochs(tmp_path / "x.set")), epochs_to_data(epochs)
    np.testing.assert_allclose(got.X, want.X, atol=1e-3)
    assert [got.classes[i] for i in got.y] == [want.classes[i] for i in want.y]


@pytest.mark.parametrize("meas_date", [None, 1_600_000_000])
def test_bids_events_tsv_beside_the_recording(synth_epochs, synth, tmp_path, meas_date):
    """BIDS keeps a recording's events in <entities>_events.tsv (mne-bids, OpenNeuro), not in the file: they are
    read as its annotations (onset from the first sample), so the epochs are those of the annotated recording."""
    raw, _ = _as_raw(synth_epochs, stim=False)
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    ann = raw.annotations
    rows = ["onset\tduration\ttrial_type\tvalue"] + [f"{o - (raw.first_time if meas_date else 0):.6f}\t0.0\t{d}\t1"
                                                     for o, d in zip(ann.onset, ann.description, strict=True)]
    raw.set_annotations(None)
    path = tmp_path / "sub-01_task-x_eeg.fif"
    raw.save(path, verbose="error")
    (tmp_path / "sub-01_task-x_events.tsv").write_text("\n".join(rows + ["3.0\tn/a\tn/a\t9"]) + "\n")
    tmax = (synth.n_times - 1) / synth.sfreq
    data = epochs_to_data(load_epochs(path, tmax=tmax))
    assert data.classes == synth.classes
    np.testing.assert_array_equal(data.y, synth.y)
    np.testing.assert_allclose(data.X, synth.X, rtol=1e-5, atol=1e-3)
    (tmp_path / "sub-01_task-x_events.tsv").write_text("onset\tduration\n1.0\t0\n")
    with pytest.raises(DataError, match=r"events file .*sub-01_task-x_events\.tsv.* has no trial_type or value"):
        load_epochs(path, tmax=tmax)
    for onsets, match in (([1.0, 1.0], r"two events at onset 1 s"), ([1.0, -2.0], r"onset '-2\.0' in row 3"),
                          ([1.0, float("inf")], r"onset 'inf' in row 3")):
        (tmp_path / "sub-01_task-x_events.tsv").write_text(
            "onset\tduration\ttrial_type\n" + "".join(f"{o}\t0\tclass0\n" for o in onsets))
        with pytest.raises(DataError, match=match):
            load_epochs(path, tmax=tmax)


def test_bids_events_tsv_wins_over_a_stim_channel(synth_epochs, synth, tmp_path):
    """A BDF's Status channel and a BIDS events file: BIDS's events count (they were ignored), with a warning."""
    raw, _ = _as_raw(synth_epochs, stim=True)
    onsets = raw.times[np.flatnonzero(raw.get_data(picks="stim")[0])]
    names = {code: name for name, code in synth_epochs.event_id.items()}
    stim_codes = raw.get_data(picks="stim")[0][np.flatnonzero(raw.get_data(picks="stim")[0])].astype(int)
    swapped = [names[c] for c in stim_codes][::-1]  # the sidecar's labels differ from the stim channel's
    path = tmp_path / "sub-02_task-x_eeg.fif"
    raw.save(path, verbose="error")
    (tmp_path / "sub-02_task-x_events.tsv").write_text(
        "onset\tduration\ttrial_type\n" + "".join(f"{o:.6f}\t0\t{d}\n" for o, d in zip(onsets, swapped)))
    with pytest.warns(UserWarning, match=r"stim channel and a BIDS events file.*sub-02_task-x_events\.tsv"):
        data = epochs_to_data(load_epochs(path, tmax=(synth.n_times - 1) / synth.sfreq))
    assert [data.classes[k] for k in data.y] == swapped


def test_window_of_fewer_than_two_samples_is_refused(synth_epochs, tmp_path):
    """--tmin 1 --tmax 1 cut one sample per trial and ended in 'constant data'; it is named as the window."""
    path = tmp_path / "rec_raw.fif"
    _as_raw(synth_epochs)[0].save(path, verbose="error")
    for tmin, tmax in ((1.0, 1.0), (1.0, 0.5)):
        with pytest.raises(ConfigError, match=rf"window tmin={tmin:g} s to tmax={tmax:g} s holds fewer than two "
                                              r"samples") as excinfo:
            load_epochs(path, tmin=tmin, tmax=tmax)
        _one_line(excinfo)
