"""The training loop: learning, determinism, standardization, early stopping, callbacks, regularization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegrobust.data._checks import ConfigError, DataError
from eegrobust.data.containers import EEGData
from eegrobust.models import TrainConfig, build_model, fit_model, predict

FAST = dict(max_epochs=5, lr=5e-3, seed=0, show_progress=False)


def _accuracy(model, data):
    return float(np.mean(predict(model, data) == data.y))


@pytest.mark.parametrize("name", ["toy", "eegnet"])
def test_learns_synthetic_signal(name, synth, synth_test):
    model = fit_model(build_model(name, synth), synth, TrainConfig(**FAST, val_fraction=0))
    assert _accuracy(model, synth_test) > 0.9


def test_trained_toy_fixture(trained_toy, synth_test):
    assert _accuracy(trained_toy, synth_test) > 0.9
    assert not trained_toy.training


def test_seeded_training_is_deterministic(synth, global_random_seed):
    config = TrainConfig(max_epochs=2, seed=global_random_seed, show_progress=False, regularization="dropout")
    runs = [fit_model(build_model("eegnet", synth, random_state=0), synth, config) for _ in range(2)]
    state = torch.random.get_rng_state()
    a, b = (r.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history_ == runs[1].history_
    other = fit_model(build_model("eegnet", synth, random_state=0), synth, TrainConfig(**{**config.to_dict(), "seed": 1}))
    assert not all(torch.equal(a[k], other.state_dict()[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)  # training left the global RNG alone


def test_standardization_from_train_split(synth):
    model = fit_model(build_model("toy", synth), synth, TrainConfig(**FAST, val_fraction=0.25))
    X_fit = synth.X[model.train_indices_].astype(np.float64)
    np.testing.assert_allclose(model.standardize.mean.numpy().ravel(), X_fit.mean(axis=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(model.standardize.std.numpy().ravel(), X_fit.std(axis=(0, 2)), rtol=1e-5)
    assert model.standardize.mean.shape == (synth.n_chans, 1)
    assert len(model.val_indices_) == 16 and np.intersect1d(model.train_indices_, model.val_indices_).size == 0
    # stratified: both classes equally in validation
    assert np.bincount(synth.y[model.val_indices_]).tolist() == [8, 8]


def test_synthetic_trials_never_validated_or_standardized(synth):
    fake = synth.X.copy() + 1000.0
    mixed = EEGData(np.concatenate([synth.X, fake]), np.concatenate([synth.y, synth.y]), synth.sfreq, synth.ch_names,
                    synth.classes, np.r_[np.zeros(synth.n_trials, bool), np.ones(synth.n_trials, bool)])
    model = fit_model(build_model("toy", mixed), mixed, TrainConfig(**FAST, val_fraction=0.25))
    assert not mixed.is_synthetic[model.val_indices_].any()
    real_fit = np.setdiff1d(model.train_indices_, np.flatnonzero(mixed.is_synthetic))
    np.testing.assert_allclose(model.standardize.mean.numpy().ravel(), mixed.X[real_fit].mean(axis=(0, 2)), rtol=1e-5)


def test_history_and_early_stopping_restores_best(synth):
    model = build_model("toy", synth)
    fit_model(model, synth, TrainConfig(max_epochs=40, patience=2, lr=0.05, lr_schedule="constant", val_fraction=0.25, seed=0,
                                         show_progress=False))
    history = model.history_
    assert set(history[0]) == {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"}
    val_losses = [h["val_loss"] for h in history]
    assert model.best_epoch_ == int(np.argmin(val_losses))
    assert len(history) <= model.best_epoch_ + 3
    # restored weights reproduce the best epoch's validation loss
    X_val, y_val = torch.from_numpy(synth.X[model.val_indices_]), torch.from_numpy(synth.y[model.val_indices_])
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(X_val), y_val)
    assert float(loss) == pytest.approx(min(val_losses), rel=1e-5)


class _Recorder:
    def __init__(self, stop_at=None):
        self.epochs, self.n_batches, self.began, self.ended, self.stop_at = [], 0, False, False, stop_at

    def on_train_begin(self, model, train):
        self.began = True

    def on_batch_begin(self, model, X, y):
        self.n_batches += 1
        return X * 0.0, y  # replacement batch: the model sees only zeros

    def on_epoch_end(self, model, epoch, logs):
        self.epochs.append(epoch)
        return epoch == self.stop_at

    def on_train_end(self, model):
        self.ended = True


def test_callbacks(synth):
    rec = _Recorder(stop_at=2)
    model = fit_model(build_model("toy", synth), synth, TrainConfig(**FAST, val_fraction=0), callbacks=[rec])
    assert rec.began and rec.ended and rec.epochs == [0, 1, 2] and rec.n_batches == 3 * 2
    assert len(model.history_) == 3
    assert model.history_[-1]["train_acc"] == pytest.approx(0.5, abs=0.2)  # trained on zeroed batches


@pytest.mark.parametrize("regularization", ["l2", "l1", "dropout", "none"])
def test_regularization_recorded(synth, regularization):
    config = TrainConfig(max_epochs=1, seed=0, show_progress=False, regularization=regularization, dropout=0.3)
    model = fit_model(build_model("eegnet", synth), synth, config)
    reg = model.regularization_
    assert reg["kind"] == regularization
    assert (reg["weight_decay"] > 0) == (regularization == "l2")
    assert (reg["l1_lambda"] > 0) == (regularization == "l1")
    p = 0.3 if regularization == "dropout" else 0.25  # else EEGNet keeps the dropout it was built with
    ps = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert ps == {p} and reg["dropout"] == p
    assert model.init_kwargs.get("drop_prob", 0.25) == p  # so a rebuilt net matches
    assert model.train_config_ == config


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_schedule(synth, schedule):
    model = fit_model(build_model("toy", synth), synth, TrainConfig(**{**FAST, "lr_schedule": schedule}))
    lrs = [h["lr"] for h in model.history_]
    assert lrs[0] == pytest.approx(5e-3)
    assert (lrs == sorted(lrs, reverse=True) and lrs[-1] < lrs[0]) if schedule == "cosine" else len(set(lrs)) == 1


def test_l1_shrinks_weights(synth):
    norms = {}
    for reg in ("none", "l1"):
        model = fit_model(build_model("toy", synth), synth,
                          TrainConfig(**FAST, regularization=reg, l1_lambda=0.05, val_fraction=0))
        norms[reg] = float(model.net.final_layer.weight.detach().abs().sum())
    assert norms["l1"] < norms["none"]


def test_balanced_sampling_runs(synth):
    imbalanced = synth.subset(np.r_[np.flatnonzero(synth.y == 0), np.flatnonzero(synth.y == 1)[:8]])
    model = fit_model(build_model("toy", imbalanced), imbalanced, TrainConfig(**FAST, balanced=True))
    assert len(model.history_) == 5


def test_wrong_data_is_refused(synth, make_data):
    model = build_model("toy", synth)
    with pytest.raises(DataError, match="8 channels"):
        fit_model(model, make_data(n_chans=8), TrainConfig(**FAST))
    with pytest.raises(TypeError, match="EEGData"):
        fit_model(model, synth.X, TrainConfig(**FAST))


@pytest.mark.parametrize("field, value", [
    ("max_epochs", 0), ("batch_size", 1), ("lr", -1.0), ("weight_decay", -0.1), ("l1_lambda", -1e-3),
    ("dropout", 1.0), ("val_fraction", 0.9), ("patience", 0), ("seed", -1), ("balanced", "yes"),
    ("max_epochs", 2.5), ("lr", float("nan")), ("lr_schedule", "step"),
])
def test_config_validation_names_field(field, value):
    with pytest.raises(ConfigError, match=rf"{field} must .*got {value!r}"):
        TrainConfig(**{field: value})


def test_config_regularization_did_you_mean():
    with pytest.raises(ConfigError, match=r"got 'dropuot'\. Did you mean 'dropout'\?"):
        TrainConfig(regularization="dropuot")


def test_config_collects_all_problems():
    with pytest.raises(ConfigError) as info:
        TrainConfig(max_epochs=0, lr=0, dropout=2)
    assert all(name in str(info.value) for name in ("max_epochs", "lr", "dropout"))


def test_config_dict_round_trip():
    config = TrainConfig(max_epochs=7, regularization="l1", patience=None)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.make(None) == TrainConfig() and TrainConfig.make(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"Did you mean 'max_epochs'\?"):
        TrainConfig.from_dict({"max_epoch": 3})
    with pytest.raises(TypeError, match="TrainConfig"):
        TrainConfig.make(3)
