from pathlib import Path

import numpy as np
import pytest

from eegrobust.data import ConfigError, bundled_names, epochs_to_data, load_bundled
from eegrobust.data.bundled import BUNDLED

FOLDER = Path(__file__).resolve().parents[2] / "data" / "bundled"
SCP_EEG = ("A1-Cz", "A2-Cz", "C3f", "C3p", "C4f", "C4p")

EXPECTED = {
    # name: (n_train, n_test, n_chans, n_times, sfreq, classes)
    "scp1": (268, 293, 6, 896, 256.0, ("negativity", "positivity")),
    "scp2": (200, 180, 7, 1152, 256.0, ("negativity", "positivity")),
    "finger": (316, 100, 28, 50, 100.0, ("left", "right")),
}
CH_TYPES = {"scp2": {"vEOG": "eog"}}  # every other channel is EEG
N_PER_CLASS = {"scp1": ((135, 133), (147, 146)), "scp2": ((100, 100), (90, 90)), "finger": ((159, 157), (49, 51))}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def bundled(request):
    return request.param, load_bundled(request.param)


@pytest.fixture(scope="module")
def scp():
    return {name: load_bundled(name) for name in ("scp1", "scp2")}


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
        assert epochs.times[0] == 0.0
        types = dict(zip(epochs.ch_names, epochs.get_channel_types()))
        assert types == {ch: CH_TYPES.get(name, {}).get(ch, "eeg") for ch in epochs.ch_names}
        assert list(epochs.event_id) == list(classes)
        assert sorted(epochs.event_id.values()) == [1, 2]
    info = BUNDLED[name]
    assert (info.n_train, info.n_test, info.n_chans, info.n_times, info.sfreq, info.classes) == EXPECTED[name]
    assert info.n_eeg_chans == n_chans - len(CH_TYPES.get(name, {}))


def test_bundled_class_counts(bundled):
    name, (train, test) = bundled
    for epochs, counts in zip((train, test), N_PER_CLASS[name]):
        assert tuple(int((epochs.events[:, 2] == code).sum()) for code in (1, 2)) == counts


def test_bundled_to_data_in_microvolts(bundled):
    name, (train, test) = bundled
    for epochs in (train, test):
        data = epochs_to_data(epochs)
        assert data.X.dtype == np.float32 and data.y.dtype == np.int64
        assert data.X.shape[1] == BUNDLED[name].n_eeg_chans
        assert data.classes == EXPECTED[name][5]
        assert set(np.unique(data.y)) == {0, 1}
        assert np.all(np.bincount(data.y) > 0.4 * len(data.y))  # roughly balanced
        std = float(np.median(data.X.std(axis=-1)))
        assert 1.0 < std < 200.0, std  # EEG in µV, not volts
        assert np.abs(data.X).max() < 1000.0
        assert not data.is_synthetic.any()


def test_bundled_files_are_float32_and_small():
    total = 0
    for name, (n_train, n_test, n_chans, n_times, _, _) in EXPECTED.items():
        for fname, n in zip(BUNDLED[name].files, (n_train, n_test)):
            size = (FOLDER / fname).stat().st_size
            payload = n * n_chans * n_times * 4  # float32; float64 would double it
            assert payload <= size < 1.05 * payload + 256 * 1024, (fname, size, payload)
            total += size
    assert total < 32 * 2**20, total  # the package must stay far under 64 MiB


def test_scp2_pools_with_scp1(scp):
    (tr1, te1), (tr2, te2) = scp["scp1"], scp["scp2"]
    for epochs in (tr1, te1, tr2, te2):
        assert epochs.event_id == {"negativity": 1, "positivity": 2}
    assert tr2.ch_names == ["A1-Cz", "A2-Cz", "C3f", "C3p", "vEOG", "C4f", "C4p"]  # BCI Competition II Ib order
    d1, d2 = epochs_to_data(tr1), epochs_to_data(tr2)
    assert d1.ch_names == d2.ch_names == SCP_EEG
    assert d1.classes == d2.classes and d1.sfreq == d2.sfreq
    # Same label for the same class name: y is the code minus one in both.
    np.testing.assert_array_equal(d2.y, tr2.events[:, 2] - 1)
    np.testing.assert_array_equal(d1.y, tr1.events[:, 2] - 1)


def test_tmax_crops_scp2_to_scp1_window(scp):
    full_train, full_test = scp["scp2"]
    train, test = load_bundled("scp2", tmax=3.5)
    n_times = len(scp["scp1"][0].times)
    assert n_times == 896
    for cropped, full in ((train, full_train), (test, full_test)):
        assert len(cropped.times) == n_times and cropped.times[0] == 0.0
        assert len(cropped) == len(full) and cropped.ch_names == full.ch_names
        np.testing.assert_array_equal(cropped.get_data(), full.get_data()[..., :n_times])  # the first 3.5 s
    assert epochs_to_data(train).X.shape[1:] == epochs_to_data(scp["scp1"][0]).X.shape[1:] == (6, 896)
    assert len(full_train.times) == 1152  # cropping a loaded copy left the cached fixture alone


@pytest.mark.parametrize("name, tmax, n_times", [("scp1", 3.5, 896), ("scp2", 4.5, 1152), ("scp2", 1.0, 256),
                                                 ("finger", 0.25, 25), ("scp2", 2, 512)])
def test_tmax_gives_round_tmax_times_sfreq_samples(name, tmax, n_times):
    for epochs in load_bundled(name, tmax=tmax):
        assert len(epochs.times) == n_times


@pytest.mark.parametrize("tmax", [0, 0.001, -1.0, 4.6, float("nan"), float("inf")])
def test_tmax_out_of_range(tmax):
    with pytest.raises(ConfigError, match=r"tmax must be in \(0, 4\.5\] s"):
        load_bundled("scp2", tmax=tmax)


@pytest.mark.parametrize("tmax", ["3.5", True])
def test_tmax_type(tmax):
    with pytest.raises(TypeError, match="tmax must be a number"):
        load_bundled("scp2", tmax=tmax)


def test_scp_dimensions_are_shifted_copies_of_one_channel(scp):
    """Documents a defect of the UEA ``.ts`` source (see README): dimension d is dimension 0 delayed by
    d * n_dims samples, so the files carry one real channel (A1-Cz), not six or seven."""
    for epochs in (*scp["scp1"], *scp["scp2"]):
        X = epochs.get_data()
        n_dims, n_times = X.shape[1:]
        for d in range(1, n_dims):
            shift = d * n_dims
            np.testing.assert_allclose(X[:, d, : n_times - shift], X[:, 0, shift:], rtol=0, atol=1e-9)


@pytest.mark.parametrize("alias, n_train", [("SelfRegulationSCP1", 268), ("FINGERMOVEMENTS", 316), ("Finger", 316),
                                            ("selfregulationscp2", 200), ("SCP2", 200)])
def test_bundled_aliases_case_insensitive(alias, n_train):
    train, _ = load_bundled(alias)
    assert len(train) == n_train


def test_bundled_unknown_name_suggests():
    with pytest.raises(ConfigError, match=r"name must be one of .*got 'fingers'.*Did you mean 'finger'\?"):
        load_bundled("fingers")


def test_bundled_name_type():
    with pytest.raises(TypeError, match="name must be a str"):
        load_bundled(1)
