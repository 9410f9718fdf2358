import numpy as np
import pandas as pd
import pytest

from eegrobust.data import PROTOCOLS, ConfigError, DataError, EEGData, Fold, make_protocol

SEEDS = (0, 1, 2)


def _study(n_subjects=3, n_sessions=2, n_per_class=6, *, n_synthetic=4, split=True, seed=0):
    """Random trials of every subject × session × class, plus ``n_synthetic`` synthetic trials per subject.

    With ``split``, a session-1 trial is ``"test"``, any other ``"train"`` (synthetic trials are ``"train"``).
    """
    rows, y = [], []
    for s in range(1, n_subjects + 1):
        for ses in range(1, n_sessions + 1):
            for label in (0, 1):
                rows += [{"subject": f"{s:02d}", "session": str(ses), "is_synthetic": False}] * n_per_class
                y += [label] * n_per_class
        rows += [{"subject": f"{s:02d}", "session": "1", "is_synthetic": True}] * n_synthetic
        y += [k % 2 for k in range(n_synthetic)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    meta = pd.DataFrame(rows).iloc[order].reset_index(drop=True)
    if split:
        meta["split"] = np.where((meta["session"] == "1") & ~meta["is_synthetic"], "test", "train")
    X = rng.normal(0, 10, size=(len(rows), 2, 8))
    return EEGData(X, np.asarray(y)[order], 100.0, ("a", "b"), ("left", "right"), metadata=meta)


def _check_folds(data, folds):
    """Invariants every protocol must meet."""
    assert folds and all(isinstance(f, Fold) for f in folds)
    subjects = data.metadata["subject"].to_numpy()
    for fold in folds:
        assert len(fold.train_idx) and len(fold.test_idx), fold
        assert not set(fold.train_idx) & set(fold.test_idx), fold
        assert fold.train_idx.max() < data.n_trials and fold.test_idx.max() < data.n_trials
        assert not data.is_synthetic[fold.test_idx].any(), fold
        assert np.issubdtype(fold.train_idx.dtype, np.integer) and np.issubdtype(fold.test_idx.dtype, np.integer)
        if fold.subject != "all":
            assert set(subjects[fold.test_idx]) == {fold.subject}
    assert len({f.name for f in folds}) == len(folds)


@pytest.mark.parametrize("name", PROTOCOLS)
@pytest.mark.parametrize("seed", SEEDS)
def test_protocol_invariants(name, seed):
    data = _study(seed=seed)
    protocol = make_protocol(name, n_folds=3, random_state=seed)
    assert protocol.name == name
    protocol.check(data)
    _check_folds(data, protocol.split(data))


def test_official_per_subject():
    data = _study()
    folds = make_protocol("official").split(data)
    assert sorted(f.name for f in folds) == ["sub-01/official", "sub-02/official", "sub-03/official"]
    split, subjects = data.metadata["split"].to_numpy(), data.metadata["subject"].to_numpy()
    for fold in folds:
        assert set(split[fold.train_idx]) == {"train"} and set(split[fold.test_idx]) == {"test"}
        assert set(subjects[fold.train_idx]) == {fold.subject}
        assert len(fold.test_idx) == 12 and len(fold.train_idx) == 12 + 4


def test_official_single_subject_and_pooled():
    one = _study(n_subjects=1)
    (fold,) = make_protocol("official").split(one)
    assert (fold.name, fold.subject, fold.session) == ("official", "01", "")
    data = _study(n_subjects=2)
    meta = data.metadata.copy()
    meta["split"] = np.where(meta["subject"] == "01", "train", "test")  # 01 trains, 02 is tested: one pooled fold
    pooled = EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes, metadata=meta)
    (fold,) = make_protocol("official").split(pooled)
    assert (fold.name, fold.subject) == ("official", "all")
    _check_folds(pooled, [fold])


def test_official_names_subjects_that_match_only_on_one_side():
    """Subjects 01 and 02 have both halves, 03 only test trials: a naming slip, refused (it silently pooled every
    subject into one fold); several subjects per side that never match (A01T.. vs A01E..) pool with a warning."""
    data = _study(n_subjects=3)
    meta = data.metadata.copy()
    meta.loc[meta["subject"] == "03", "split"] = "test"
    partial = EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes, metadata=meta)
    with pytest.raises(DataError, match=r"subjects \['01', '02'\] have train and test trials, but none only train "
                                        r"and \['03'\] only test trials"):
        make_protocol("official").split(partial)
    data = _study(n_subjects=4)
    meta = data.metadata.copy()
    meta["split"] = np.where(meta["subject"].isin(["01", "02"]), "train", "test")
    disjoint = EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes, metadata=meta)
    with pytest.warns(UserWarning, match=r"no subject has both train and test trials \(train: 01, 02; test: 03, 04\)"
                                         r", so one pooled fold"):
        (fold,) = make_protocol("official").split(disjoint)
    assert fold.subject == "all"


@pytest.mark.parametrize("seed", SEEDS)
def test_within_subject_tests_every_real_trial_once(seed):
    data = _study(seed=seed)
    folds = make_protocol("within-subject", n_folds=4, random_state=seed).split(data)
    assert len(folds) == 3 * 4 and folds[1].name == "sub-01/fold-2"
    tested = np.concatenate([f.test_idx for f in folds])
    assert sorted(tested) == sorted(np.flatnonzero(~data.is_synthetic))
    for fold in folds:  # stratified: 24 real trials per subject, 12 per class -> 3 of each class per fold
        np.testing.assert_array_equal(np.bincount(data.y[fold.test_idx]), [3, 3])
        assert data.is_synthetic[fold.train_idx].sum() == 4  # the subject's synthetic trials train only


def test_within_subject_deterministic():
    data = _study()
    a = make_protocol("within-subject", random_state=3).split(data)
    b = make_protocol("within-subject", random_state=3).split(data)
    c = make_protocol("within-subject", random_state=4).split(data)
    assert all(np.array_equal(x.test_idx, y.test_idx) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.test_idx, y.test_idx) for x, y in zip(a, c, strict=True))


def test_cross_session_leaves_one_session_out():
    data = _study(n_sessions=3)
    folds = make_protocol("cross-session").split(data)
    assert sorted(f.name for f in folds)[:3] == ["sub-01/ses-1", "sub-01/ses-2", "sub-01/ses-3"]
    assert [f.subject for f in folds] == [s for s in data.subjects for _ in range(3)]  # subjects in data order
    session, subjects = data.metadata["session"].to_numpy(), data.metadata["subject"].to_numpy()
    for fold in folds:
        assert set(session[fold.test_idx]) == {fold.session}
        assert fold.session not in set(session[fold.train_idx])
        assert set(subjects[fold.train_idx]) == {fold.subject}


def test_cross_subject_keeps_test_subject_out_of_train():
    data = _study(n_subjects=4)
    folds = make_protocol("cross-subject").split(data)
    assert [f.name for f in folds] == [f"sub-{s}" for s in data.subjects]
    assert sorted(data.subjects) == ["01", "02", "03", "04"]
    subjects = data.metadata["subject"].to_numpy()
    for fold in folds:
        assert fold.subject not in set(subjects[fold.train_idx])  # not even its synthetic trials
        assert data.is_synthetic[fold.train_idx].sum() == 3 * 4
        assert len(fold.test_idx) == 2 * 2 * 6


def test_make_protocol_errors():
    with pytest.raises(ConfigError, match="protocol must be one of .* got 'cross-subjct'. Did you mean 'cross-subj"):
        make_protocol("cross-subjct")
    for bad in (1, 0, 2.0, True, "5"):
        with pytest.raises(ConfigError, match=f"n_folds must be an int >= 2, got {bad!r}"):
            make_protocol("within-subject", n_folds=bad)
    with pytest.raises(ConfigError, match="random_state must be an int or None, got 0.5"):
        make_protocol("within-subject", random_state=0.5)


def test_official_needs_split():
    with pytest.raises(ConfigError, match=r"protocol 'official' needs a given train/test split \(--train/--test or "
                                          r"a bundled dataset\); use within-subject, cross-session or cross-subject"):
        make_protocol("official").split(_study(split=False))


def test_official_bad_split_values():
    data = _study()
    meta = data.metadata.copy()
    meta.loc[0, "split"] = "val"
    with pytest.raises(DataError, match=r"metadata column 'split' must hold 'train' or 'test', got \['val'\]"):
        make_protocol("official").check(EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes,
                                                metadata=meta))
    meta["split"] = "train"
    with pytest.raises(DataError, match="protocol 'official' found no real test trials"):
        make_protocol("official").check(EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes,
                                                metadata=meta))


def test_within_subject_too_many_folds():
    data = _study(n_per_class=2)  # 4 real trials per class and subject
    with pytest.raises(DataError, match=r"subject '01' has 4 trial\(s\) of class 'left', fewer than n_folds=5"):
        make_protocol("within-subject", n_folds=5).split(data)
    make_protocol("within-subject", n_folds=4).check(data)


def test_cross_session_needs_two_sessions():
    with pytest.raises(DataError, match=r"needs at least 2 sessions per subject; subject '01' has 1 \(\['1'\]\)"):
        make_protocol("cross-session").split(_study(n_sessions=1))


def test_cross_subject_needs_two_subjects():
    with pytest.raises(DataError, match=r"needs at least 2 subjects, got 1 \(\['01'\]\)"):
        make_protocol("cross-subject").split(_study(n_subjects=1))


@pytest.mark.parametrize("name", PROTOCOLS)
def test_one_class_subject(name):
    data = _study()
    keep = ~((data.metadata["subject"] == "02").to_numpy() & (data.y == 1))
    with pytest.raises(DataError, match=r"subject '02' has trials of one class only \('left'\)"):
        make_protocol(name).check(data.subset(np.flatnonzero(keep)))


@pytest.mark.parametrize("name", PROTOCOLS)
def test_only_synthetic_subject(name):
    data = _study()
    keep = ~((data.metadata["subject"] == "03").to_numpy() & ~data.is_synthetic)
    with pytest.raises(DataError, match="subject '03' has only synthetic trials"):
        make_protocol(name).check(data.subset(np.flatnonzero(keep)))


def test_protocol_needs_eegdata():
    with pytest.raises(TypeError, match="data must be an EEGData, got ndarray"):
        make_protocol("cross-subject").split(np.zeros((4, 2, 8)))


def test_cross_subject_warns_when_each_file_is_a_subject():
    """Without BIDS names each file is its own subject: A01T and A01E (one person's two sessions) would train on
    each other. Cross-subject says so; subjects named by BIDS entities (or metadata) give no warning."""
    import warnings

    data = _study(n_subjects=3)
    named = data.metadata.assign(source=[f"/d/sub-{s}_ses-{k}_epo.fif" for s, k in
                                         zip(data.metadata["subject"], data.metadata["session"], strict=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_protocol("cross-subject").split(EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes,
                                                     metadata=named))
    stems = data.metadata.assign(subject=[f"A{s}T" for s in data.metadata["subject"]])
    stems["source"] = [f"/d/{s}_raw.fif" for s in stems["subject"]]
    by_file = EEGData(data.X, data.y, data.sfreq, data.ch_names, data.classes, metadata=stems)
    with pytest.warns(UserWarning, match=r"each file is one subject \(A01T, A02T, A03T\).*name them sub-<label>"):
        make_protocol("cross-subject").split(by_file)


def test_raw_fif_suffix_is_not_part_of_the_subject():
    from eegrobust.data.datasets import _file_stem

    assert [_file_stem(p) for p in ("d/A01T_raw.fif", "d/rec-raw.fif.gz", "d/s1-epo.fif", "d/x.edf", "_raw.fif")] == [
        "A01T", "rec", "s1", "x", "_raw"]
