"""Shared fixtures: the test seed and the learnable synthetic data set (STYLE.md section 7)."""

import os

import pytest

_SEED = int(os.environ.get("HARNESS_TEST_SEED", "0"))


def pytest_report_header(config):
    import torch

    gpu = "CUDA available: gpu tests run" if torch.cuda.is_available() else "no CUDA device: gpu tests are skipped"
    return f"eegrobust: global_random_seed={_SEED} (set HARNESS_TEST_SEED to change it); {gpu}"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def global_random_seed():
    """0 unless the environment variable HARNESS_TEST_SEED says otherwise; use it to build local generators."""
    return _SEED


@pytest.fixture(scope="session")
def synth_epochs():
    """`make_synthetic_epochs(random_state=0)`: 48 trials, 4 channels, 128 samples, 2 classes (do not modify)."""
    from eegrobust.data import make_synthetic_epochs

    return make_synthetic_epochs(random_state=0)


@pytest.fixture(scope="session")
def synth(synth_epochs):
    """`synth_epochs` as `EEGData` in microvolts (frozen; its arrays should not be written to)."""
    from eegrobust.data import epochs_to_data

    return epochs_to_data(synth_epochs)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small convolutions run many times faster on one thread than on two on a busy CPU; restored afterwards."""
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="session", autouse=True)
def _victim_cache_in_tmp(tmp_path_factory):
    """Trained victims are cached under $EEGROBUST_CACHE: during tests a temporary folder, never ~/.cache."""
    old = os.environ.get("EEGROBUST_CACHE")
    os.environ["EEGROBUST_CACHE"] = str(tmp_path_factory.mktemp("victim-cache"))
    yield
    if old is None:
        os.environ.pop("EEGROBUST_CACHE", None)
    else:
        os.environ["EEGROBUST_CACHE"] = old


@pytest.fixture
def scaled_logits():
    """``scaled_logits(model, factor)``: the same decisions with logits ``factor`` times larger (a model fed inputs
    far from its training scale, whose cross-entropy saturates)."""
    import torch

    class Scaled(torch.nn.Module):
        def __init__(self, model, factor):
            super().__init__()
            self.model, self.factor = model, factor

        def forward(self, x):
            return self.model(x) * self.factor

    return Scaled
