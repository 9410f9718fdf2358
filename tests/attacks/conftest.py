"""Fixtures for the attack tests: learnable synthetic EEG, trained victims (once per session), fast attacks.

Expensive objects (trained models, the fitted Jacobian substitute) are session-scoped and private; each test
gets a deep copy (STYLE.md section 7), so a test that changes a model cannot leak into another.
"""

import contextlib
import copy
import math

import numpy as np
import pytest
import torch

from eegrobust.attacks import JacobianSubstitute, channel_scale, make_attack
from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.models import TrainConfig, build_model, fit_model

#: Attack parameters that keep every registered attack well under a second on the toy model.
FAST_PARAMS = {
    "square": {"max_queries": 50},
    "hopskipjump": {"max_queries": 300},
    "simba": {"max_queries": 60},
    "rays": {"max_queries": 200},
    "cw_l2": {"binary_search_steps": 3, "steps": 20},
    "apgd_ce": {"steps": 20},
    "apgd_dlr": {"steps": 20},
    "fmn": {"steps": 20},  # the default 100 steps take seconds on EEGNet
    "autoattack": {"steps": 10, "square_queries": 30},  # the default 5 x 100 steps take seconds on EEGNet
    "band_pgd": {"steps": 10, "sfreq": 128.0},  # the synthetic trials' rate: the tests call without sfreq=
    "uap": {"epochs": 5, "fit_data": "attack_train"},  # a str names a fixture: attacker trials, not attack_eval
}


@contextlib.contextmanager
def one_torch_thread():
    """Run torch on one intra-op thread, restoring the caller's setting afterwards.

    The nets here are tiny: on a shared 2-core CPU, torch's default threads spin against other processes and
    made EEGNet training about 100x slower (15 s instead of 0.15 s, measured), while one thread loses nothing.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _train_config(**kw):
    return TrainConfig(**{"max_epochs": 10, "val_fraction": 0.0, "patience": None, "show_progress": False, **kw})


def _fit(arch, data, seed, **kw):
    with one_torch_thread():
        model = build_model(arch, data, random_state=seed)
        return fit_model(model, data, _train_config(seed=seed, **kw))


@pytest.fixture(scope="session")
def attack_train():
    """64 training trials (4 channels x 128 samples, 2 classes), `make_synthetic_epochs(random_state=0)`."""
    return epochs_to_data(make_synthetic_epochs(n_trials=64, random_state=0))


@pytest.fixture(scope="session")
def attack_eval():
    """32 held-out trials from another draw (random_state=1): what the attacks perturb."""
    return epochs_to_data(make_synthetic_epochs(n_trials=32, random_state=1))


@pytest.fixture(scope="session")
def _trained_toy(attack_train):
    return _fit("toy", attack_train, seed=0)


@pytest.fixture(scope="session")
def _trained_eegnet(attack_train):
    # lr=1e-2: with the default 1e-3 some seeds stay near chance after 10 epochs on 64 trials.
    return _fit("eegnet", attack_train, seed=0, lr=1e-2)


@pytest.fixture(scope="session")
def _surrogate_eegnet(attack_train):
    """A second EEGNet (other initialization and batch order): the gray-box attacker's substitute."""
    return _fit("eegnet", attack_train, seed=2, lr=1e-2)


@pytest.fixture
def trained_toy(_trained_toy):
    return copy.deepcopy(_trained_toy)


@pytest.fixture
def trained_eegnet(_trained_eegnet):
    return copy.deepcopy(_trained_eegnet)


@pytest.fixture
def surrogate_eegnet(_surrogate_eegnet):
    return copy.deepcopy(_surrogate_eegnet)


@pytest.fixture(params=["toy", "eegnet"])
def victim(request):
    """Each trained victim in turn (a fresh copy)."""
    return request.getfixturevalue(f"trained_{request.param}")


@pytest.fixture(scope="session")
def jacobian_seed():
    """The black-box attacker's 20 unlabelled seed trials (a third draw, random_state=2)."""
    return epochs_to_data(make_synthetic_epochs(n_trials=20, random_state=2))


@pytest.fixture(scope="session")
def _fitted_substitute(_trained_toy, jacobian_seed, attack_eval):
    attack = JacobianSubstitute(seed=jacobian_seed, arch="toy", rounds=1,
                                train_config=_train_config(max_epochs=3))
    with one_torch_thread():
        return attack.fit(copy.deepcopy(_trained_toy), channel_scale(attack_eval.X))


@pytest.fixture
def fitted_substitute(_fitted_substitute):
    return copy.deepcopy(_fitted_substitute)


@pytest.fixture
def fast_attack(request):
    """``fast_attack(name, **params)``: `make_attack` with the small budgets of `FAST_PARAMS`.

    A ``fit_data`` given there as a str is the name of the fixture that holds it (``uap`` fits on
    ``attack_train``).
    """

    def make(name, **params):
        fast = dict(FAST_PARAMS.get(name, {}))
        if isinstance(fast.get("fit_data"), str):
            fast["fit_data"] = request.getfixturevalue(fast["fit_data"])
        return make_attack(name, **{**fast, **params})

    return make


def accuracy(model, X, y):
    """Fraction of trials of ``X`` that ``model`` (in eval mode, without gradients) labels ``y``."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(np.asarray(X, dtype=np.float32))).argmax(1).numpy()
    model.train(was_training)
    return float((pred == y).mean())


@pytest.fixture
def acc():
    """`accuracy(model, X, y)` as a fixture, so test modules need not import this conftest."""
    return accuracy


class BudgetCheck:
    """Assert that an `AttackOutput` respects its epsilon in budget space (``(X_adv - X) / scale``).

    L-inf: ``max |delta| / scale <= epsilon`` on every channel. L2: ``||delta / scale||_2 <= epsilon *
    sqrt(n_chans * n_times)`` per trial. Minimal-norm attacks: every trial they changed has ``min_norm`` within
    that budget, and ``min_norm`` is the norm of the perturbation returned. Tolerance: ``rel_tol`` of the budget
    plus ``abs_tol`` (float32 round-off of ``X + delta``).
    """

    rel_tol, abs_tol = 1e-4, 1e-6

    @staticmethod
    def norms(attack, X, X_adv, scale):
        """Per-trial norm of ``(X_adv - X) / scale`` in ``attack.norm``, and the budget at epsilon=1."""
        D = (X_adv.astype(np.float64) - X.astype(np.float64)) / scale[None, :, None]
        if attack.norm == "linf":
            return np.abs(D).reshape(len(D), -1).max(axis=1), 1.0
        return np.sqrt((D ** 2).reshape(len(D), -1).sum(axis=1)), math.sqrt(X.shape[1] * X.shape[2])

    def __call__(self, attack, out, X, scale):
        eps, scale = out.epsilon, np.asarray(scale, dtype=np.float64)
        if attack.norm == "linf":
            D = (out.X_adv.astype(np.float64) - X.astype(np.float64)) / scale[None, :, None]
            per_chan = np.abs(D).max(axis=(0, 2))
            assert np.all(per_chan <= eps * (1 + self.rel_tol) + self.abs_tol), (
                f"{attack!r} at epsilon={eps}: max |delta| / scale per channel {per_chan}")
        norms, unit = self.norms(attack, X, out.X_adv, scale)
        budget = eps * unit
        assert np.all(norms <= budget * (1 + self.rel_tol) + self.abs_tol), (
            f"{attack!r} at epsilon={eps}: {attack.norm} norm {norms.max():.6g} > budget {budget:.6g}")
        if out.min_norm is not None:
            changed = np.any(out.X_adv != X, axis=(1, 2))
            assert np.all(out.min_norm[changed] <= budget * (1 + self.rel_tol)), out.min_norm[changed]
            np.testing.assert_allclose(out.min_norm[changed], norms[changed], rtol=1e-3, atol=1e-5)


@pytest.fixture
def within_budget():
    """`BudgetCheck()`: ``within_budget(attack, out, X, scale)`` asserts the budget held."""
    return BudgetCheck()
