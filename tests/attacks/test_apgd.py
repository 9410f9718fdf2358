"""APGD (CE, DLR variants), the AutoAttack-style ensemble and EOT on randomised models."""

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import APGDDLR, AutoAttack, channel_scale, make_attack
from eegrobust.attacks.apgd import checkpoints, loss_per_trial
from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.data._checks import ConfigError
from eegrobust.models import TrainConfig, build_model, fit_model


def test_checkpoints_follow_the_paper():
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == sorted(set(checkpoints(10)))
    assert max(checkpoints(7)) <= 7


def test_dlr_is_scale_invariant_and_margin_is_not():
    z = torch.tensor([[3.0, 1.0, 0.5], [0.2, 2.0, -1.0]])
    y = torch.tensor([0, 0])
    assert torch.allclose(loss_per_trial(z, y, "dlr"), loss_per_trial(10 * z, y, "dlr"))
    assert not torch.allclose(loss_per_trial(z, y, "margin"), loss_per_trial(10 * z, y, "margin"))


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_dlr"])
def test_apgd_at_least_as_strong_as_pgd(name, trained_eegnet, attack_eval, acc):
    X, y = attack_eval.X, attack_eval.y
    epsilons = (0.1, 0.3)
    pgd = make_attack("linf_pgd", steps=20)(trained_eegnet, X, y, epsilons=epsilons)
    apgd = make_attack(name, steps=50)(trained_eegnet, X, y, epsilons=epsilons)
    for p, a in zip(pgd, apgd):
        assert acc(trained_eegnet, a.X_adv, y) <= acc(trained_eegnet, p.X_adv, y) + 1 / len(y)
    assert acc(trained_eegnet, apgd[-1].X_adv, y) < acc(trained_eegnet, X, y)


@pytest.mark.parametrize("name", ["l2_apgd_ce", "l2_apgd_dlr"])
def test_l2_apgd_at_least_as_strong_as_l2_pgd_within_the_l2_ball(name, trained_eegnet, attack_eval, acc):
    """The L2 versions (a review found L2 PGD, DeepFool and C&W together weaker than an independent L2 APGD):
    at least as strong as L2 PGD at the same radius, and every perturbation within the L2 budget."""
    from eegrobust.attacks.budget import l2_budget

    X, y = attack_eval.X, attack_eval.y
    epsilons = (0.1, 0.3)
    pgd = make_attack("l2_pgd", steps=20)(trained_eegnet, X, y, epsilons=epsilons)
    apgd = make_attack(name, steps=50)(trained_eegnet, X, y, epsilons=epsilons)
    scale = channel_scale(X, "rel")
    for eps, p, a in zip(epsilons, pgd, apgd, strict=True):
        assert acc(trained_eegnet, a.X_adv, y) <= acc(trained_eegnet, p.X_adv, y) + 1 / len(y)
        radius = np.linalg.norm(((a.X_adv.astype(np.float64) - X) / scale[None, :, None]).reshape(len(X), -1), axis=1)
        assert radius.max() <= l2_budget(eps, X.shape[1], X.shape[2]) * (1 + 1e-6)
        assert radius.max() > 0.5 * l2_budget(eps, X.shape[1], X.shape[2])  # it used the ball, not a sliver
    assert acc(trained_eegnet, apgd[-1].X_adv, y) < acc(trained_eegnet, X, y)


def test_dlr_on_two_classes_names_the_variant(trained_toy, attack_eval):
    with pytest.raises(ConfigError, match=r"variant='dlr' needs >= 3 classes.*variant='margin'"):
        APGDDLR(variant="dlr", steps=5)(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,))
    (out,) = APGDDLR(steps=5)(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,))
    assert out.info["loss"] == "margin"


@pytest.fixture(scope="module")
def four_class():
    data = epochs_to_data(make_synthetic_epochs(n_trials=80, n_classes=4, snr=2.0, random_state=3))
    torch.manual_seed(0)
    model = fit_model(build_model("toy", data, random_state=0), data,
                      TrainConfig(max_epochs=15, val_fraction=0.0, patience=None, show_progress=False, lr=1e-2))
    return model.eval(), data


def test_targeted_dlr_on_four_classes(four_class, acc):
    model, data = four_class
    assert acc(model, data.X, data.y) > 0.5
    (out,) = APGDDLR(steps=20, n_target_classes=3)(model, data.X, data.y, epsilons=(0.5,))
    assert out.info["loss"] == "targeted"
    assert acc(model, out.X_adv, data.y) < acc(model, data.X, data.y)
    with pytest.raises(ConfigError, match="variant='targeted' needs >= 4 classes"):
        APGDDLR(variant="targeted")(_three_outputs(model), data.X, data.y % 3, epsilons=(0.1,))


def _three_outputs(model):
    class Three(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m(x)[:, :3]

    return Three()


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_eot_iter_must_be_a_positive_int(value):
    with pytest.raises((ConfigError, TypeError), match="eot_iter"):
        make_attack("apgd_ce", eot_iter=value)


class NoisyInput(nn.Module):
    """A randomised defence: Gaussian noise on the input, also in eval mode."""

    def __init__(self, model, sigma):
        super().__init__()
        self.model, self.sigma = model, sigma

    def forward(self, x):
        return self.model(x + self.sigma * torch.randn_like(x))


def test_eot_attacks_a_randomised_model(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    model = NoisyInput(trained_toy, sigma=0.3 * float(channel_scale(X).mean()))
    with pytest.raises(ConfigError, match="eot_iter >= 2"):
        make_attack("apgd_ce", steps=10)(model, X, y, epsilons=(0.3,))
    (out,) = make_attack("apgd_ce", steps=20, eot_iter=8)(model, X, y, epsilons=(0.5,))
    assert out.info["eot_iter"] == 8

    def mean_acc(X_):
        with torch.no_grad():
            x = torch.from_numpy(X_)
            p = torch.stack([model(x).softmax(1) for _ in range(20)]).mean(0)
        return float((p.argmax(1).numpy() == y).mean())

    assert mean_acc(out.X_adv) < mean_acc(X) - 0.2


def test_autoattack_is_the_per_trial_worst_case(trained_eegnet, attack_eval, acc):
    X, y = attack_eval.X, attack_eval.y
    clean = acc(trained_eegnet, X, y)
    aa = AutoAttack(version="standard", steps=20, square_queries=30)
    (out,) = aa(trained_eegnet, X, y, epsilons=(0.1,))
    broken = out.info["broken_by"]
    assert list(broken)[:2] == ["apgd_ce", "apgd_dlr"] and "square" in broken
    with torch.no_grad():
        pred = trained_eegnet(torch.from_numpy(out.X_adv)).argmax(1).numpy()
    assert sum(broken.values()) == int(((pred != y)).sum())
    (ce,) = make_attack("apgd_ce", steps=20)(trained_eegnet, X, y, epsilons=(0.1,))
    assert acc(trained_eegnet, out.X_adv, y) <= acc(trained_eegnet, ce.X_adv, y)
    assert acc(trained_eegnet, out.X_adv, y) <= clean


def test_autoattack_rand_uses_eot():
    assert AutoAttack(version="rand").eot_iter == 20
    assert all(c.eot_iter == 20 for c in AutoAttack(version="rand").components())
    with pytest.raises(ConfigError, match="version"):
        AutoAttack(version="plus")


def test_scale_ignores_dc_offsets():
    data = epochs_to_data(make_synthetic_epochs(n_trials=40, random_state=0))
    rng = np.random.default_rng(0)
    shifted = data.X + rng.normal(0, 4000, size=(data.n_trials, data.n_chans, 1))
    np.testing.assert_allclose(channel_scale(shifted), channel_scale(data.X), rtol=1e-6)
