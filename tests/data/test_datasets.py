import re
import sys

import numpy as np
import pandas as pd
import pytest

from eegrobust.data import (
    ConfigError,
    DataError,
    bids_entities,
    epochs_to_data,
    load_bundled_dataset,
    load_dataset,
    load_files,
    load_pair,
    make_synthetic_epochs,
)

# MOABB's FakeDataset uses a montage name that MNE 1.13 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Montage name:FutureWarning")


def _save(folder, name, *, random_state=0, event_id=None, **kwargs):
    """Write small synthetic epochs to ``folder / name``; return the path."""
    epochs = make_synthetic_epochs(n_trials=kwargs.pop("n_trials", 8), n_times=kwargs.pop("n_times", 32),
                                   random_state=random_state, **kwargs)
    if event_id is not None:  # {"a": code_of_class0, "b": code_of_class1}
        codes = list(event_id.values())
        epochs.events[:, 2] = [codes[c - 1] for c in epochs.events[:, 2]]
        epochs.event_id = event_id
    path = folder / name
    epochs.save(path, verbose="error")
    return path


@pytest.fixture
def bids_dir(tmp_path):
    for i, (sub, ses) in enumerate([("01", "1"), ("01", "2"), ("02", "1"), ("02", "2")]):
        _save(tmp_path, f"sub-{sub}_ses-{ses}_task-x_epo.fif", random_state=i)
    return tmp_path


@pytest.mark.parametrize("name, expected", [
    ("sub-01_ses-2_task-mi_run-3_epo.fif", {"subject": "01", "session": "2", "run": "3"}),
    ("data/sub-A7_task-x_epo.fif", {"subject": "A7"}),
    ("sub-02-epo.fif", {"subject": "02"}),
    ("ses-post_run-1_eeg.fif", {"session": "post", "run": "1"}),
    ("S01_session1_epo.fif", {}),
    ("mysub-01_epo.fif", {}),
])
def test_bids_entities(name, expected):
    assert bids_entities(name) == expected


def test_load_files_glob_bids(bids_dir):
    data = load_files(str(bids_dir / "sub-*_epo.fif"))
    assert data.n_trials == 32 and data.subjects == ("01", "02")
    assert data.sessions_of("01") == ("1", "2")
    assert set(data.metadata["run"]) == {"0"}
    sources = list(pd.unique(data.metadata["source"]))
    assert [s.rsplit("/", 1)[-1] for s in sources] == sorted(p.name for p in bids_dir.iterdir())
    assert data.classes == ("class0", "class1")


def test_load_files_list_and_recursive(bids_dir):
    (bids_dir / "deeper").mkdir()
    _save(bids_dir / "deeper", "sub-03_ses-1_task-x_epo.fif", random_state=9)
    data = load_files([bids_dir / "sub-01_ses-1_task-x_epo.fif", str(bids_dir / "**" / "sub-03*_epo.fif")])
    assert data.subjects == ("01", "03")
    twice = load_files([str(bids_dir / "sub-01*_epo.fif"), bids_dir / "sub-01_ses-1_task-x_epo.fif"])
    assert twice.n_trials == 16  # a file matched twice is read once


def test_load_files_glob_no_match(tmp_path):
    pattern = str(tmp_path / "nothing" / "*.fif")
    with pytest.raises(DataError, match=f"no files match '{re.escape(pattern)}'; check the path \\(relative to"):
        load_files(pattern)


def test_load_files_subject_from_stem_or_metadata(tmp_path):
    _save(tmp_path, "A01T_epo.fif", random_state=0)
    epochs = make_synthetic_epochs(n_trials=8, n_times=32, random_state=1)
    epochs.metadata = pd.DataFrame({"subject": [5] * 8, "session": ["b"] * 8})
    epochs.save(tmp_path / "recording-epo.fif", verbose="error")
    data = load_files(str(tmp_path / "*.fif"))
    assert data.subjects == ("A01T", "5")
    assert data.sessions_of("5") == ("b",) and data.sessions_of("A01T") == ("0",)


def test_load_files_unifies_classes_by_name(tmp_path):
    _save(tmp_path, "sub-01_epo.fif", event_id={"a": 1, "b": 2})
    _save(tmp_path, "sub-02_epo.fif", event_id={"a": 2, "b": 1})
    data = load_files(str(tmp_path / "sub-*_epo.fif"))
    assert data.classes == ("a", "b")
    first, second = (data.subset(data.metadata["subject"].to_numpy() == s) for s in ("01", "02"))
    np.testing.assert_array_equal(first.y, second.y)  # same trials (same seed), same labels by name


@pytest.mark.parametrize("change, match", [
    ({"n_chans": 3}, r"has ch_names \('EEG000', 'EEG001', 'EEG002'\) but subject '01'"),
    ({"sfreq": 256.0}, r"has sfreq 256.0 but subject '01' \(file '.*sub-01_epo.fif'\) has 128.0"),
    ({"n_times": 40}, r"has n_times 40 but subject '01'"),
], ids=["channels", "sfreq", "n_times"])
def test_load_files_mismatch_names_subject_and_file(tmp_path, change, match):
    _save(tmp_path, "sub-01_epo.fif")
    _save(tmp_path, "sub-02_epo.fif", **change)
    with pytest.raises(DataError, match=r"subject '02' \(file '.*sub-02_epo.fif'\) " + match):
        load_files(str(tmp_path / "sub-*_epo.fif"))


def test_load_files_bad_sources():
    with pytest.raises(TypeError, match="sources must be a path, a glob pattern or a non-empty list"):
        load_files([])
    with pytest.raises(TypeError, match="each source must be a path or a glob pattern"):
        load_files([3])


def test_load_pair_mixed_sides(bids_dir):
    test_epochs = make_synthetic_epochs(n_trials=6, n_times=32, random_state=5)
    data = load_pair(str(bids_dir / "sub-01_*_epo.fif"), test_epochs)
    assert list(data.metadata["split"]) == ["train"] * 16 + ["test"] * 6
    assert data.subjects == ("01", "1")
    again = load_pair(data.subset(np.arange(16)), epochs_to_data(test_epochs))
    np.testing.assert_array_equal(again.X, data.X)


def test_load_bundled_dataset():
    data = load_bundled_dataset("SCP1")
    assert data.subjects == ("scp1",) and data.classes == ("negativity", "positivity")
    assert data.metadata["split"].value_counts().to_dict() == {"train": 268, "test": 293}
    with pytest.raises(ConfigError, match=r"dataset \(--dataset\) must be one of \['finger', 'scp', 'scp1', 'scp2'\]"
                                          r", got 'scp3'\. Did you mean"):
        load_bundled_dataset("scp3")
    pooled = load_bundled_dataset("scp")  # Ia and Ib as two subjects, Ib cut to Ia's 3.5 s window
    assert pooled.subjects == ("scp1", "scp2") and pooled.n_times == data.n_times
    assert pooled.metadata.groupby(["subject", "split"]).size().to_dict() == {
        ("scp1", "test"): 293, ("scp1", "train"): 268, ("scp2", "test"): 180, ("scp2", "train"): 200}


def test_load_dataset_sources(bids_dir):
    name, data = load_dataset(data=str(bids_dir / "sub-*_epo.fif"), subjects=["02"])
    assert name == bids_dir.name and data.subjects == ("02",) and data.n_trials == 16  # the folder, not 'sub-*'
    name, data = load_dataset(data=[bids_dir / f"sub-01_ses-{k}_task-x_epo.fif" for k in (1, 2)])
    assert name == bids_dir.name
    name, _ = load_dataset(data=bids_dir / "sub-02_ses-1_task-x_epo.fif")
    assert name == "sub-02_ses-1_task-x"
    name, data = load_dataset(train=str(bids_dir / "sub-0*_ses-1_*_epo.fif"),
                              test=str(bids_dir / "sub-0*_ses-2_*_epo.fif"), subjects=1)
    assert name == "custom" and data.subjects == ("01",) and set(data.metadata["split"]) == {"train", "test"}
    name, data = load_dataset(bundled="finger")
    assert name == "finger" and "split" in data.metadata


@pytest.mark.parametrize("kwargs, match", [
    ({}, "give exactly one data source: .*; got none"),
    ({"data": "x_epo.fif", "bundled": "scp1"}, "give exactly one data source: .*; got data, bundled"),
    ({"train": "x_epo.fif"}, "an official split needs both train= and test=; test= is missing"),
    ({"test": "x_epo.fif"}, "train= is missing"),
    ({"bundled": "scp1", "paradigm": "P300"}, "paradigm= applies to MOABB datasets only"),
    ({"bundled": "scp1", "subjects": ["2"]}, r"subjects \['2'\] are not in the data; available subjects are "
                                             r"\['scp1'\]"),
], ids=["none", "two", "train-only", "test-only", "paradigm", "subjects"])
def test_load_dataset_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        load_dataset(**kwargs)


# --- MOABB (offline: FakeDataset) ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_dataset():
    pytest.importorskip("moabb")
    from moabb.datasets.fake import FakeDataset

    return FakeDataset(n_sessions=2, n_runs=1, n_subjects=3, event_list=("left_hand", "right_hand"),
                       paradigm="imagery", duration=30, n_events=10, seed=0)


@pytest.fixture(scope="module")
def moabb_data(fake_dataset):
    return load_dataset(moabb=fake_dataset)


def test_load_moabb_fake(moabb_data):
    name, data = moabb_data
    assert name == "FakeDataset"
    assert data.subjects == ("1", "2", "3") and data.classes == ("left_hand", "right_hand")
    assert data.sessions_of("2") == ("0", "1") and set(data.metadata["run"]) == {"0"}
    assert data.n_trials == 3 * 2 * 10 and data.ch_names == ("C3", "Cz", "C4")
    assert data.metadata["subject"].map(type).eq(str).all()
    assert 1 < np.median(data.X.std(axis=-1)) < 1e3  # microvolts


def test_load_moabb_subjects_and_paradigm(fake_dataset, moabb_data):
    from eegrobust.data import load_moabb

    data = load_moabb(fake_dataset, paradigm="LeftRightImagery", subjects=[2, "3"])
    assert data.subjects == ("2", "3")
    np.testing.assert_allclose(data.X, moabb_data[1].subset(moabb_data[1].metadata["subject"] != "1").X,
                               rtol=1e-5, atol=1e-3)
    with pytest.raises(ConfigError, match=r"subjects \[4\] are not all in FakeDataset.subject_list \[1, 2, 3\]"):
        load_moabb(fake_dataset, subjects=[4])
    with pytest.raises(ConfigError, match="MOABB paradigm must be one of .* Did you mean 'MotorImagery'"):
        load_moabb(fake_dataset, paradigm="MotorImagry")
    with pytest.raises(ConfigError, match="filter-bank paradigms are not supported"):
        load_moabb(fake_dataset, paradigm="FilterBankMotorImagery")


def test_load_moabb_bad_dataset(fake_dataset):
    from eegrobust.data import load_moabb

    with pytest.raises(ConfigError, match="MOABB dataset must be one of .* Did you mean 'BNCI2014_001'"):
        load_moabb("BNCI2014_01")
    with pytest.raises(TypeError, match="dataset must be a MOABB dataset or a class name"):
        load_moabb(3)


def test_load_moabb_not_installed(monkeypatch):
    from eegrobust.data import load_moabb

    monkeypatch.setitem(sys.modules, "moabb", None)
    with pytest.raises(ConfigError, match=r"MOABB is not installed: pip install 'eegrobust\[moabb\]'"):
        load_moabb("FakeDataset")
