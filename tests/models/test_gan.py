"""models.gan: a tiny EEG-GAN on synthetic epochs (shapes, seeding, saving, bad input)."""

import numpy as np
import pytest
import torch

from eegrobust.data import ConfigError, DataError, EEGData, ModelFileError
from eegrobust.models.gan import EEGGAN, GANConfig, fit_gan, load_gan, save_gan, stage_lengths

TINY = dict(n_stages=2, n_filters=8, latent_dim=8, kernel_size=5, n_iterations=20, batch_size=16,
            show_progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test of this module runs on one torch thread."""


@pytest.fixture(scope="module")
def _tiny_gan(synth, _one_torch_thread):
    return fit_gan(synth, GANConfig(**TINY))


@pytest.fixture
def tiny_gan(_tiny_gan):
    import copy

    return copy.deepcopy(_tiny_gan)


def test_sample_shapes_and_units(tiny_gan, synth):
    X = tiny_gan.sample(5, random_state=0)
    assert X.shape == (5, synth.n_chans, synth.n_times) and X.dtype == np.float32
    # mapped back to microvolts: the fixed channel offsets of the training data come back
    assert np.corrcoef(X.mean(axis=(0, 2)), synth.X.mean(axis=(0, 2)))[0, 1] > 0.9
    assert tiny_gan.sample(3, label="pos", random_state=0).shape == (3, synth.n_chans, synth.n_times)


def test_sample_data_is_synthetic_and_balanced(tiny_gan, synth):
    data = tiny_gan.sample_data(10, random_state=0)
    assert isinstance(data, EEGData) and data.is_synthetic.all()
    assert data.ch_names == synth.ch_names and data.sfreq == synth.sfreq and data.classes == synth.classes
    assert np.bincount(data.y).tolist() == [5, 5]


def test_sample_epochs_are_marked_and_match(tiny_gan, synth):
    epochs = tiny_gan.sample_epochs(6, random_state=0)
    assert epochs.ch_names == list(synth.ch_names) and epochs.info["sfreq"] == synth.sfreq
    assert epochs.event_id == {"neg": 1, "pos": 2}
    assert epochs.metadata["is_synthetic"].all()
    assert "synthetic" in epochs.info["description"]
    np.testing.assert_allclose(epochs.get_data(copy=True) * 1e6, tiny_gan.sample(6, random_state=0), rtol=1e-4,
                               atol=1e-3)


def test_seeded_fit_and_sample(synth, _tiny_gan):
    again = fit_gan(synth, GANConfig(**TINY))
    np.testing.assert_array_equal(again.sample(4, random_state=1), _tiny_gan.sample(4, random_state=1))
    assert not np.array_equal(_tiny_gan.sample(4, random_state=1), _tiny_gan.sample(4, random_state=2))
    other = fit_gan(synth, GANConfig(**{**TINY, "seed": 1}))
    assert not np.array_equal(other.sample(4, random_state=1), _tiny_gan.sample(4, random_state=1))


def test_fit_leaves_global_rng_alone(synth):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit_gan(synth, GANConfig(**{**TINY, "n_iterations": 2}))
    torch.testing.assert_close(torch.rand(3), expected)


def test_history_and_stage(tiny_gan):
    assert tiny_gan.stage == 1 and tiny_gan.alpha == 1.0
    assert tiny_gan.history_ and {"loss_critic", "loss_generator", "wasserstein"} <= set(tiny_gan.history_[0])


def test_save_load_roundtrip(tiny_gan, tmp_path, synth):
    save_gan(tiny_gan, tmp_path / "g")
    assert {p.name for p in (tmp_path / "g").iterdir()} == {"generator.safetensors", "gan.json"}
    loaded = load_gan(tmp_path / "g", ch_names=synth.ch_names, sfreq=synth.sfreq)
    np.testing.assert_array_equal(loaded.sample(4, random_state=0), tiny_gan.sample(4, random_state=0))
    assert isinstance(loaded, EEGGAN) and loaded.classes == synth.classes


def test_load_rejects_other_channels_or_sfreq(tiny_gan, tmp_path, synth):
    save_gan(tiny_gan, tmp_path)
    with pytest.raises(ModelFileError, match="channels"):
        load_gan(tmp_path, ch_names=synth.ch_names[::-1])
    with pytest.raises(ModelFileError, match="250 Hz"):
        load_gan(tmp_path, sfreq=250.0)
    with pytest.raises(ModelFileError, match="no gan.json"):
        load_gan(tmp_path / "missing")


def test_class_with_too_few_trials(synth):
    keep = np.concatenate([np.flatnonzero(synth.y == 0), np.flatnonzero(synth.y == 1)[:5]])
    with pytest.raises(DataError, match="class 'pos' has 5 training trial.*needs 8 per class"):
        fit_gan(synth.subset(keep), GANConfig(**TINY))


def test_epochs_too_short_names_minimum(synth):
    short = EEGData(synth.X[:, :, :24], synth.y, synth.sfreq, synth.ch_names, synth.classes)
    with pytest.raises(DataError, match=r"24 samples .* needs n_times >= 29 \(0.227 s\)"):
        fit_gan(short, GANConfig(**{**TINY, "n_stages": 3, "work_sfreq": None}))
    assert stage_lengths(29, 128.0, {"work_sfreq": None})[0] == 8
    assert stage_lengths(896, 256.0) == (56, 112, 224)


def test_synthetic_training_trials_rejected(synth):
    marked = EEGData(synth.X, synth.y, synth.sfreq, synth.ch_names, synth.classes, np.ones(synth.n_trials, bool))
    with pytest.raises(DataError, match="synthetic"):
        fit_gan(marked, GANConfig(**TINY))


@pytest.mark.parametrize("bad, match", [({"n_stages": 4}, "n_stages"), ({"kernel_size": 4}, "kernel_size"),
                                         ({"n_iterations": None}, "cannot both be None"),
                                         ({"bacth_size": 8}, "Did you mean 'batch_size'")])
def test_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        GANConfig.from_dict(bad)


def test_config_roundtrip():
    config = GANConfig(**TINY)
    assert GANConfig.from_dict(config.to_dict()) == config
