"""Fixtures for tests/models: learnable synthetic EEG, a trained toy model, and the bundled shapes."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest

from eegrobust.data.containers import EEGData

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "bundled"
# (n_chans, n_times, sfreq) of the bundled data sets, so shape tests need no file I/O.
BUNDLED_SHAPES = {"scp1": (6, 896, 256.0), "finger": (28, 50, 100.0)}


def make_sinusoid_data(n_trials=64, n_chans=4, n_times=128, sfreq=128.0, amplitude=10.0, noise=5.0,
                       random_state=0) -> EEGData:
    """Two classes: a 10 Hz sinusoid in channel 0 whose sign is the label, under Gaussian noise (microvolts)."""
    rng = np.random.default_rng(random_state)
    y = np.arange(n_trials) % 2
    rng.shuffle(y)
    t = np.arange(n_times) / sfreq
    X = noise * rng.standard_normal((n_trials, n_chans, n_times))
    X[:, 0] += amplitude * np.where(y == 1, 1.0, -1.0)[:, None] * np.sin(2 * np.pi * 10 * t)
    X += np.linspace(-30.0, 30.0, n_chans)[None, :, None]  # fixed channel offsets: standardization has work to do
    return EEGData(X.astype(np.float32), y, sfreq, tuple(f"EEG{i:02d}" for i in range(n_chans)), ("neg", "pos"))


def read_bundled(name: str, split: str) -> EEGData:
    """Read a bundled epochs file into EEGData (microvolts); until data.bundled.load_bundled lands."""
    import mne

    epochs = mne.read_epochs(BUNDLED / f"{name}_{split}-epo.fif", verbose="error")
    by_code = sorted(epochs.event_id.items(), key=lambda kv: kv[1])
    return EEGData(epochs.get_data(copy=True) * 1e6, epochs.events[:, 2] - 1, epochs.info["sfreq"],
                   epochs.ch_names, tuple(k for k, _ in by_code))


@pytest.fixture(scope="session")
def global_random_seed():
    return int(os.environ.get("HARNESS_TEST_SEED", 0))


@pytest.fixture(scope="session")
def read_bundled_fn():
    return read_bundled


@pytest.fixture(scope="session")
def make_data():
    return make_sinusoid_data


@pytest.fixture(scope="session")
def synth():
    return make_sinusoid_data(n_trials=64, random_state=0)


@pytest.fixture(scope="session")
def synth_test():
    return make_sinusoid_data(n_trials=64, random_state=1)


@pytest.fixture(scope="session")
def _trained_toy(synth):
    from eegrobust.models import TrainConfig, build_model, fit_model

    return fit_model(build_model("toy", synth), synth, TrainConfig(max_epochs=5, lr=5e-3, seed=0, show_progress=False))


@pytest.fixture
def trained_toy(_trained_toy):
    return copy.deepcopy(_trained_toy)
