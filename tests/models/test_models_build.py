"""Registry and build_model: every architecture builds for the bundled shapes; bad input names the value."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from eegrobust.data._checks import ConfigError
from eegrobust.models import EEGDecoder, build_model, default_kwargs, min_n_times, model_names

# (n_chans, n_times, sfreq) of the bundled data sets (scp1, finger), so these tests need no file I/O.
SHAPES = {"scp1": (6, 896, 256.0), "finger": (28, 50, 100.0)}


def test_registry_names():
    assert model_names() == ["deep4", "eegnet", "shallow", "toy"]


@pytest.mark.parametrize("shape", sorted(SHAPES), ids=str)
@pytest.mark.parametrize("name", model_names())
def test_builds_for_bundled_shapes(name, shape):
    n_chans, n_times, sfreq = SHAPES[shape]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. Deep4Net's own "n_times is smaller" rescaling
        model = build_model(name, n_chans=n_chans, n_times=n_times, sfreq=sfreq, n_outputs=2)
    assert isinstance(model, EEGDecoder)
    assert model.arch == name and model.sfreq == sfreq and model.n_times == n_times
    X = torch.randn(3, n_chans, n_times) * 20
    logits = model.eval()(X)
    assert logits.shape == (3, 2) and logits.dtype == torch.float32
    json.dumps(model.init_kwargs)  # explicit kwargs, storable as JSON


def test_build_from_eegdata(synth):
    model = build_model("eegnet", synth)
    assert model.ch_names == synth.ch_names and model.classes == synth.classes
    assert (model.n_chans, model.n_times, model.n_outputs) == (synth.n_chans, synth.n_times, synth.n_classes)


def test_build_from_mapping():
    model = build_model("toy", dict(n_chans=3, n_times=20, sfreq=100.0, n_outputs=4))
    assert model.classes == ("0", "1", "2", "3") and model.ch_names == ("ch0", "ch1", "ch2")


def test_kernels_scale_with_sfreq():
    eeg128 = default_kwargs("eegnet", n_chans=4, n_times=512, sfreq=128.0, n_outputs=2)
    eeg256 = default_kwargs("eegnet", n_chans=4, n_times=1024, sfreq=256.0, n_outputs=2)
    assert eeg128["kernel_length"] == 64 and eeg256["kernel_length"] == 64  # scaled down only
    assert default_kwargs("eegnet", n_chans=4, n_times=256, sfreq=64.0, n_outputs=2)["kernel_length"] == 32
    shallow250 = default_kwargs("shallow", n_chans=4, n_times=1000, sfreq=250.0, n_outputs=2)
    assert (shallow250["filter_time_length"], shallow250["pool_time_length"], shallow250["pool_time_stride"]) == (25, 75, 15)


@pytest.mark.parametrize("name", ["deep4", "shallow"])
def test_too_short_window_names_minimum(name):
    need = min_n_times(name, 100.0)
    build_model(name, n_chans=2, n_times=need, sfreq=100.0, n_outputs=2)  # the minimum itself works
    with pytest.raises(ConfigError, match=rf"n_times={need - 1} is too short.*n_times >= {need}\b"):
        build_model(name, n_chans=2, n_times=need - 1, sfreq=100.0, n_outputs=2)


def test_too_short_after_override_names_minimum():
    with pytest.raises(ConfigError, match=r"needs n_times >= 109\b"):
        build_model("shallow", n_chans=2, n_times=50, sfreq=100.0, n_outputs=2, filter_time_length=10,
                    pool_time_length=100)


def test_unknown_name_did_you_mean():
    with pytest.raises(ConfigError, match=r"model must be one of .*got 'eegnte'\. Did you mean 'eegnet'\?"):
        build_model("eegnte", n_chans=2, n_times=100, sfreq=100.0, n_outputs=2)


def test_unknown_override_did_you_mean():
    with pytest.raises(ConfigError, match=r"got 'drop_porb'\. Did you mean 'drop_prob'\?"):
        build_model("eegnet", n_chans=2, n_times=100, sfreq=100.0, n_outputs=2, drop_porb=0.1)


def test_missing_shape_names_it():
    with pytest.raises(ConfigError, match="n_times=None"):
        build_model("eegnet", n_chans=2, sfreq=100.0, n_outputs=2)


def test_override_is_applied_and_stored():
    model = build_model("eegnet", n_chans=2, n_times=128, sfreq=128.0, n_outputs=2, F1=4, D=1)
    assert model.init_kwargs["F1"] == 4 and model.net.F1 == 4


def test_seeded_init_is_deterministic_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a = build_model("shallow", n_chans=3, n_times=200, sfreq=100.0, n_outputs=2, random_state=1)
    b = build_model("shallow", n_chans=3, n_times=200, sfreq=100.0, n_outputs=2, random_state=1)
    c = build_model("shallow", n_chans=3, n_times=200, sfreq=100.0, n_outputs=2, random_state=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_random_state_generator_accepted():
    build_model("toy", n_chans=2, n_times=10, sfreq=10.0, n_outputs=2, random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="random_state"):
        build_model("toy", n_chans=2, n_times=10, sfreq=10.0, n_outputs=2, random_state="zero")


def test_data_and_shape_keywords_conflict(synth):
    with pytest.raises(TypeError, match=r"either data or the shape keywords.*\['sfreq'\]"):
        build_model("toy", synth, sfreq=100.0)
