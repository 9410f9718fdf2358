import numpy as np
import pytest

from eegrobust.data import ConfigError, DataError, EEGData, split_disjoint, train_val_split


def _trial_ids(part, whole):
    """Indices in ``whole`` of the trials of ``part`` (trials are unique rows of random noise)."""
    flat = whole.X.reshape(whole.n_trials, -1)
    return [int(np.flatnonzero((flat == row).all(axis=1))[0]) for row in part.X.reshape(part.n_trials, -1)]


def _unbalanced(n0=30, n1=10):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 10, size=(n0 + n1, 2, 8))
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    return EEGData(X, y, 100.0, ("a", "b"), ("rest", "move"))


def test_train_val_split_stratified_and_disjoint(synth, global_random_seed):
    train, val = train_val_split(synth, val_fraction=0.25, random_state=global_random_seed)
    assert (train.n_trials, val.n_trials) == (36, 12)
    np.testing.assert_array_equal(np.bincount(val.y), [6, 6])
    ids_train, ids_val = _trial_ids(train, synth), _trial_ids(val, synth)
    assert set(ids_train).isdisjoint(ids_val) and sorted(ids_train + ids_val) == list(range(48))
    assert ids_val == sorted(ids_val)  # original order kept


def test_train_val_split_keeps_proportions():
    data = _unbalanced()
    train, val = train_val_split(data, val_fraction=0.2)
    np.testing.assert_array_equal(np.bincount(val.y), [6, 2])
    np.testing.assert_array_equal(np.bincount(train.y), [24, 8])


def test_train_val_split_deterministic(synth):
    a = train_val_split(synth, random_state=3)[1]
    b = train_val_split(synth, random_state=3)[1]
    c = train_val_split(synth, random_state=4)[1]
    assert a.data_hash() == b.data_hash() != c.data_hash()


def test_train_val_split_unstratified(synth):
    train, val = train_val_split(synth, val_fraction=0.5, stratify=False)
    assert train.n_trials == val.n_trials == 24


@pytest.mark.parametrize("val_fraction", [0, 1, 1.5, -0.1, True, "0.2"])
def test_train_val_split_bad_fraction(synth, val_fraction):
    with pytest.raises(ConfigError, match=f"val_fraction must be a number in \\(0, 1\\), got {val_fraction!r}"):
        train_val_split(synth, val_fraction=val_fraction)


def test_train_val_split_class_too_small():
    with pytest.raises(DataError, match="class 'move' has 1 trial"):
        train_val_split(_unbalanced(n0=10, n1=1))


def test_split_disjoint_stratified(global_random_seed):
    data = _unbalanced()
    first, rest = split_disjoint(data, 8, random_state=global_random_seed)
    assert (first.n_trials, rest.n_trials) == (8, 32)
    np.testing.assert_array_equal(np.bincount(first.y), [6, 2])
    assert set(_trial_ids(first, data)).isdisjoint(_trial_ids(rest, data))


def test_split_disjoint_shares_add_up(synth):
    first, rest = split_disjoint(synth, 7)
    assert first.n_trials == 7 and rest.n_trials == 41
    assert sorted(np.bincount(first.y)) == [3, 4]


@pytest.mark.parametrize("n_first", [0, 48, 100, 2.5])
def test_split_disjoint_bad_n_first(synth, n_first):
    with pytest.raises(ConfigError, match=f"n_first must be an int in \\[1, 47\\] .*got {n_first!r}"):
        split_disjoint(synth, n_first)


def test_splits_need_eegdata(synth_epochs):
    with pytest.raises(TypeError, match="data must be an EEGData, got EpochsArray"):
        train_val_split(synth_epochs)
