import mne
import numpy as np
import pytest

from eegrobust.data import ConfigError, epochs_to_data, make_synthetic_epochs


def test_synthetic_defaults(synth_epochs, synth):
    assert isinstance(synth_epochs, mne.EpochsArray)
    assert synth_epochs.event_id == {"class0": 1, "class1": 2}
    assert synth.X.shape == (48, 4, 128) and synth.sfreq == 128.0
    assert synth.classes == ("class0", "class1")
    np.testing.assert_array_equal(np.bincount(synth.y), [24, 24])
    assert 5.0 < float(np.median(synth.X.std(axis=-1))) < 20.0  # noise of ~10 µV, stored in volts
    assert np.abs(synth_epochs.get_data()).max() < 1e-3


def test_synthetic_deterministic(global_random_seed):
    a = epochs_to_data(make_synthetic_epochs(random_state=global_random_seed))
    b = epochs_to_data(make_synthetic_epochs(random_state=global_random_seed))
    c = epochs_to_data(make_synthetic_epochs(random_state=global_random_seed + 1))
    assert a.data_hash() == b.data_hash()
    assert a.data_hash() != c.data_hash()


def test_synthetic_learnable(global_random_seed):
    from sklearn.linear_model import LogisticRegression

    train = epochs_to_data(make_synthetic_epochs(random_state=global_random_seed))
    test = epochs_to_data(make_synthetic_epochs(random_state=global_random_seed + 100))
    clf = LogisticRegression(max_iter=1000).fit(train.X[:, 0], train.y)
    assert clf.score(test.X[:, 0], test.y) > 0.9
    # The other channels carry no class signal.
    clf_noise = LogisticRegression(max_iter=1000).fit(train.X[:, 1], train.y)
    assert clf_noise.score(test.X[:, 1], test.y) < 0.8


def test_synthetic_multiclass_and_sizes():
    data = epochs_to_data(make_synthetic_epochs(n_trials=31, n_chans=2, n_times=64, sfreq=100.0, n_classes=3))
    assert data.X.shape == (31, 2, 64) and data.classes == ("class0", "class1", "class2")
    np.testing.assert_array_equal(np.bincount(data.y), [11, 10, 10])


def test_synthetic_snr_zero_is_noise():
    data = epochs_to_data(make_synthetic_epochs(snr=0.0))
    means = [data.X[data.y == k, 0].mean(axis=0) for k in (0, 1)]
    assert np.abs(means[0] - means[1]).max() < 20.0  # no class-locked 20 µV peak-to-peak difference


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 1}, "n_classes must be an int >= 2, got 1"),
        ({"n_trials": 1}, "n_trials must be an int >= 2, got 1"),
        ({"n_chans": 0}, "n_chans must be an int >= 1, got 0"),
        ({"sfreq": 16.0}, "sfreq must be > 20 Hz .* got 16.0"),
        ({"snr": -1}, "snr must be a number >= 0, got -1"),
    ],
)
def test_synthetic_bad_params(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_synthetic_epochs(**kwargs)
