import copy

import pytest

from eegrobust.data import train_val_split
from eegrobust.models import TrainConfig, build_model, fit_model


@pytest.fixture(scope="session")
def split(synth_big):
    return train_val_split(synth_big, 0.5, random_state=0)


@pytest.fixture(scope="session")
def synth_big():
    from eegrobust.data import epochs_to_data, make_synthetic_epochs

    return epochs_to_data(make_synthetic_epochs(n_trials=120, random_state=0))


@pytest.fixture(scope="session")
def _toy_victims(split):
    train, _ = split
    config = TrainConfig(max_epochs=8, patience=None, show_progress=False)
    return {name: fit_model(build_model(name, train, random_state=0), train, config) for name in ("toy", "eegnet")}


@pytest.fixture
def toy_victims(_toy_victims):
    return copy.deepcopy(_toy_victims)
