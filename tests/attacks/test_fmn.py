"""FMN (L-inf Fast Minimum-Norm): minimal norms, the curve it implies, and parameter checks, on the toy victim."""

import itertools

import numpy as np
import pytest
import torch

from eegrobust.attacks import FMN, BudgetSpace, channel_scale, make_attack
from eegrobust.attacks.fmn import logit_margin
from eegrobust.data import ConfigError

EPSILONS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 1.0)


@pytest.fixture
def toy_run(trained_toy, attack_eval):
    """FMN's outputs on the toy victim at `EPSILONS` (one run)."""
    return FMN()(trained_toy, attack_eval.X, attack_eval.y, epsilons=EPSILONS)


def _pred(model, X):
    with torch.no_grad():
        return model.eval()(torch.from_numpy(np.asarray(X, dtype=np.float32))).argmax(1).numpy()


def test_min_norm_finite_for_fooled_and_adversarial_flips(trained_toy, attack_eval, toy_run, within_budget):
    X, y = attack_eval.X, attack_eval.y
    norms = toy_run[0].min_norm
    assert all(np.array_equal(out.min_norm, norms) for out in toy_run)  # one run: the same norms everywhere
    last = toy_run[-1]
    fooled = _pred(trained_toy, last.X_adv) != y
    assert fooled.mean() == 1.0  # a linear victim falls at epsilon=1
    assert np.all(np.isfinite(norms[fooled]))
    changed = np.any(last.X_adv != X, axis=(1, 2))
    assert np.all(fooled[changed])  # every returned adversarial trial flips its label
    for out in toy_run:
        within_budget(FMN(), out, X, channel_scale(X))
        flipped = _pred(trained_toy, out.X_adv) != y
        np.testing.assert_array_equal(flipped, norms <= out.epsilon * (1 + 1e-4))


def test_min_norm_matches_linear_boundary(trained_toy, attack_eval, toy_run):
    """On the (linear, two-class) toy the minimal L-inf norm is margin / ||grad margin||_1 in budget space."""
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    S = torch.from_numpy(X / scale[None, :, None].astype(np.float32)).requires_grad_(True)
    margin = logit_margin(BudgetSpace(trained_toy.eval(), scale)(S), torch.from_numpy(y))
    (grad,) = torch.autograd.grad(margin.sum(), S)
    exact = (margin.clamp_min(0) / grad.abs().sum((1, 2))).detach().numpy()
    norms = toy_run[0].min_norm
    assert np.all(norms >= exact * (1 - 1e-3))  # nothing below the true minimum
    np.testing.assert_allclose(norms, exact, rtol=0.02, atol=1e-6)


def test_accuracy_non_increasing_in_epsilon(trained_toy, attack_eval, toy_run, acc):
    accs = [acc(trained_toy, out.X_adv, attack_eval.y) for out in toy_run]
    assert all(a >= b for a, b in itertools.pairwise(accs)), accs
    assert accs[0] > accs[-1]


def test_epsilon_zero_is_clean(trained_toy, attack_eval, toy_run, acc):
    X, y = attack_eval.X, attack_eval.y
    np.testing.assert_array_equal(toy_run[0].X_adv, X)
    assert acc(trained_toy, toy_run[0].X_adv, y) == acc(trained_toy, X, y)
    wrong = _pred(trained_toy, X) != y
    np.testing.assert_array_equal(toy_run[0].min_norm[wrong], 0.0)  # already misclassified: norm 0


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_not_weaker_than_fixed_budget_pgd(eps, trained_toy, attack_eval, toy_run, acc):
    X, y = attack_eval.X, attack_eval.y
    (pgd,) = make_attack("linf_pgd")(trained_toy, X, y, epsilons=(eps,))
    fmn = toy_run[EPSILONS.index(eps)]
    assert acc(trained_toy, fmn.X_adv, y) <= acc(trained_toy, pgd.X_adv, y) + 0.1


def test_restarts_only_improve_and_are_seeded(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    one = FMN(steps=20)(trained_toy, X, y, epsilons=(1.0,))[0].min_norm
    two = [FMN(steps=20, restarts=2)(trained_toy, X, y, epsilons=(1.0,), random_state=s)[0].min_norm
           for s in (0, 0, 1)]
    assert np.all(two[0] <= one) and np.all(two[2] <= one)  # a restart keeps the smaller adversarial
    np.testing.assert_array_equal(two[0], two[1])


@pytest.mark.parametrize(("param", "value"), [
    ("steps", 0), ("steps", 2.5), ("alpha_init", 0.0), ("alpha_init", 3.0), ("alpha_init", float("nan")),
    ("gamma_init", 0.0), ("gamma_init", 1.0), ("gamma_init", -0.1), ("gamma_init", True), ("restarts", 0),
    ("restarts", "2"),
])
def test_bad_parameters(param, value):
    with pytest.raises(ConfigError, match=f"FMN {param} must") as info:
        FMN(**{param: value})
    message = str(info.value)
    assert "\n" not in message and repr(value) in message
