import numpy as np
import pytest

from eegrobust.data import ConfigError, bundled_names, epochs_to_data, load_bundled
from eegrobust.data.bundled import BUNDLED

EXPECTED = {
    # name: (n_train, n_test, n_chans, n_times, sfreq, classes)
    "scp1": (268, 293, 6, 896, 256.0, ("negativity", "positivity")),
    "finger": (316, 100, 28, 50, 100.0, ("left", "right")),
}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def bundled(request):
    return request.param, load_bundled(request.param)


def test_bundled_names():
    assert bundled_names() == sorted(EXPECTED)


def test_bundled_shapes_and_metadata(bundled):
    name, (train, test) = bundled
    n_train, n_test, n_chans, n_times, sfreq, classes = EXPECTED[name]
    assert (len(train), len(test)) == (n_train, n_test)
    for epochs in (train, test):
        assert epochs.preload
        assert len(epochs.ch_names) == n_chans
        assert len(epochs.times) == n_times
        assert epochs.info["sfreq"] == sfreq
        assert set(epochs.get_channel_types()) == {"eeg"}
        assert list(epochs.event_id) == list(classes)
    info = BUNDLED[name]
    assert (info.n_train, info.n_test, info.n_chans, info.n_times, info.sfreq, info.classes) == EXPECTED[name]


def test_bundled_to_data_in_microvolts(bundled):
    name, (train, test) = bundled
    for epochs in (train, test):
        data = epochs_to_data(epochs)
        assert data.X.dtype == np.float32 and data.y.dtype == np.int64
        assert data.classes == EXPECTED[name][5]
        assert set(np.unique(data.y)) == {0, 1}
        assert np.all(np.bincount(data.y) > 0.4 * len(data.y))  # roughly balanced
        std = float(np.median(data.X.std(axis=-1)))
        assert 1.0 < std < 200.0, std  # EEG in µV, not volts
        assert np.abs(data.X).max() < 1000.0
        assert not data.is_synthetic.any()


@pytest.mark.parametrize("alias, n_train", [("SelfRegulationSCP1", 268), ("FINGERMOVEMENTS", 316), ("Finger", 316)])
def test_bundled_aliases_case_insensitive(alias, n_train):
    train, _ = load_bundled(alias)
    assert len(train) == n_train


def test_bundled_unknown_name_suggests():
    with pytest.raises(ConfigError, match=r"name must be one of .*got 'fingers'.*Did you mean 'finger'\?"):
        load_bundled("fingers")


def test_bundled_name_type():
    with pytest.raises(TypeError, match="name must be a str"):
        load_bundled(1)
