"""Slow: real braindecode models trained on the bundled BCI Competition II data."""

from __future__ import annotations

import numpy as np
import pytest

from eegrobust.models import TrainConfig, build_model, fit_model, load_bundle, predict, save_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundled_data(read_bundled_fn):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = read_bundled_fn(name, "train"), read_bundled_fn(name, "test")
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["eegnet", "deep4", "shallow"])
@pytest.mark.parametrize("dataset", ["scp1", "finger"])
def test_trains_on_bundled(name, dataset, tmp_path, bundled_data):
    train, test = bundled_data(dataset)
    model = fit_model(build_model(name, train), train, TrainConfig(max_epochs=5, show_progress=False))
    assert model.history_ and np.isfinite(model.history_[-1]["train_loss"])
    loaded = load_bundle(save_bundle(model, tmp_path / name), ch_names=train.ch_names)
    np.testing.assert_array_equal(predict(loaded, test), predict(model, test))


@pytest.mark.parametrize("name, min_acc", [("eegnet", 0.85), ("deep4", 0.80), ("shallow", 0.75)])
def test_default_config_reaches_target_on_scp1(name, min_acc, bundled_data):
    train, test = bundled_data("scp1")
    model = fit_model(build_model(name, train), train, TrainConfig(show_progress=False))
    assert np.mean(predict(model, test) == test.y) >= min_acc
