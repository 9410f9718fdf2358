"""EEGDecoder, Standardize and the predict helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegrobust.data._checks import DataError
from eegrobust.models import Standardize, build_model, predict, predict_logits


def test_standardize_fit_and_forward():
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((10, 3, 50)) * [[2.0], [5.0], [1.0]] + [[1.0], [-4.0], [10.0]]).astype(np.float32)
    layer = Standardize(3).fit(X)
    assert layer.mean.shape == (3, 1) and layer.std.shape == (3, 1)
    Z = layer(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(Z.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=(0, 2)), 1, atol=1e-4)
    assert {name for name, _ in layer.named_buffers()} == {"mean", "std"}


def test_standardize_flat_channel_does_not_divide_by_zero():
    X = np.zeros((4, 2, 10), np.float32)
    X[:, 1] = np.arange(10)
    layer = Standardize(2).fit(X)
    assert torch.isfinite(layer(torch.from_numpy(X))).all()


def test_decoder_is_standardize_then_net(synth):
    model = build_model("toy", synth).eval()
    model.standardize.fit(synth.X)
    X = torch.from_numpy(synth.X[:5])
    expected = model.net((X - model.standardize.mean) / model.standardize.std)
    torch.testing.assert_close(model(X), expected)


def test_gradients_reach_raw_input(trained_toy, synth):
    X = torch.from_numpy(synth.X[:4]).requires_grad_(True)
    trained_toy(X).sum().backward()
    assert X.grad is not None and X.grad.abs().sum() > 0


def test_predict_helpers_restore_training_flag(trained_toy, synth):
    for flag in (True, False):
        trained_toy.train(flag)
        logits = predict_logits(trained_toy, synth, batch_size=7)
        assert trained_toy.training is flag
    assert logits.shape == (synth.n_trials, 2) and logits.dtype == np.float32
    assert not np.allclose(logits.sum(axis=1), 1.0)  # logits, not probabilities
    np.testing.assert_array_equal(predict(trained_toy, synth.X), logits.argmax(axis=1))
    np.testing.assert_array_equal(predict(trained_toy, torch.from_numpy(synth.X)), logits.argmax(axis=1))


def test_predict_checks_shape(trained_toy, synth):
    with pytest.raises(DataError, match=r"shape \(n_trials, 4, 128\).*got shape \(3, 4, 100\)"):
        predict(trained_toy, np.zeros((3, 4, 100), np.float32))
    with pytest.raises(DataError, match="shape"):
        predict(trained_toy, np.zeros((4, 128), np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        predict_logits(trained_toy, synth, batch_size=0)


def test_repr_names_arch(trained_toy):
    assert "arch='toy'" in repr(trained_toy)


def test_conform_data_reorders_the_model_channels_by_name(trained_toy, synth_test):
    """Epochs with the model's channels in another order (another montage file, another tool) are reordered by
    name with a warning, so the model reads each electrode where it learned it: the same predictions as in order.
    Channels that differ as names stay an error."""
    from eegrobust.data import EEGData
    from eegrobust.models.compat import conform_data

    order = list(range(synth_test.n_chans))[::-1]
    shuffled = EEGData(synth_test.X[:, order], synth_test.y, synth_test.sfreq,
                       tuple(synth_test.ch_names[i] for i in order), synth_test.classes)
    with pytest.warns(UserWarning, match=r"in another order .*reordered by name to the model's order"):
        fixed = conform_data(trained_toy, shuffled)
    assert fixed.ch_names == tuple(trained_toy.ch_names)
    np.testing.assert_array_equal(predict(trained_toy, fixed.X), predict(trained_toy, synth_test.X))
    renamed = EEGData(synth_test.X, synth_test.y, synth_test.sfreq, ("X1",) + tuple(synth_test.ch_names[1:]),
                      synth_test.classes)
    with pytest.raises(DataError, match=r"missing \['" + synth_test.ch_names[0]):
        conform_data(trained_toy, renamed)
