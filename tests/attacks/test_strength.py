"""The attacks really attack: accuracy drops, PGD beats FGSM and noise, and matches a PGD written here."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import FGSM, LinfPGD, RandomSignNoise, channel_scale

EPSILONS = (0.05, 0.1, 0.2, 0.3, 0.5)


def test_victims_are_accurate(victim, attack_eval, acc):
    """Precondition of every test here: the trained victims decode the held-out synthetic trials."""
    assert acc(victim, attack_eval.X, attack_eval.y) > 0.9


def test_pgd_drops_accuracy(victim, attack_eval, acc, global_random_seed):
    X, y = attack_eval.X, attack_eval.y
    clean = acc(victim, X, y)
    (out,) = LinfPGD()(victim, X, y, epsilons=(0.5,), random_state=global_random_seed)
    robust = acc(victim, out.X_adv, y)
    assert clean > 0.9
    assert robust < 0.3, f"clean {clean:.3f}, robust {robust:.3f} at epsilon=0.5"


def test_robust_accuracy_falls_with_epsilon(victim, attack_eval, acc):
    X, y = attack_eval.X, attack_eval.y
    outputs = LinfPGD()(victim, X, y, epsilons=EPSILONS)
    robust = [acc(victim, out.X_adv, y) for out in outputs]
    assert all(a >= b for a, b in itertools.pairwise(robust)), robust
    assert robust[0] > robust[-1]


def test_pgd_at_least_as_strong_as_fgsm(victim, attack_eval, acc, global_random_seed):
    X, y = attack_eval.X, attack_eval.y
    pgd = LinfPGD()(victim, X, y, epsilons=EPSILONS, random_state=global_random_seed)
    fgsm = FGSM()(victim, X, y, epsilons=EPSILONS)
    for eps, p, f in zip(EPSILONS, pgd, fgsm):
        assert acc(victim, p.X_adv, y) <= acc(victim, f.X_adv, y), f"epsilon={eps}"


def test_noise_is_much_weaker_than_pgd(victim, attack_eval, acc, global_random_seed):
    X, y = attack_eval.X, attack_eval.y
    clean = acc(victim, X, y)
    (pgd,) = LinfPGD()(victim, X, y, epsilons=(0.5,), random_state=global_random_seed)
    (noise,) = RandomSignNoise()(victim, X, y, epsilons=(0.5,), random_state=global_random_seed)
    pgd_drop = clean - acc(victim, pgd.X_adv, y)
    noise_change = abs(clean - acc(victim, noise.X_adv, y))
    assert pgd_drop > 0.6
    assert noise_change < 0.25 * pgd_drop


def reference_linf_pgd(model, X, y, epsilon, *, scale, steps=40, seed=0):
    """Madry et al.'s PGD in budget space ``X / scale``: random start, 2.5 * epsilon / steps sign steps."""
    gen = torch.Generator().manual_seed(seed)
    sc = torch.as_tensor(scale, dtype=torch.float32)[None, :, None]
    S, labels = torch.from_numpy(X) / sc, torch.from_numpy(y)
    delta = (torch.rand(S.shape, generator=gen) * 2 - 1) * epsilon
    step = 2.5 * epsilon / steps
    model.eval()
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = nn.functional.cross_entropy(model((S + delta) * sc), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-epsilon, epsilon)
    return ((S + delta) * sc).numpy()


@pytest.mark.parametrize("epsilon", [0.15, 0.25])
def test_suite_pgd_as_strong_as_reference(epsilon, victim, attack_eval, acc, global_random_seed):
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    (out,) = LinfPGD(steps=40)(victim, X, y, epsilons=(epsilon,), scale=scale, random_state=global_random_seed)
    X_ref = reference_linf_pgd(victim, X, y, epsilon, scale=scale, seed=global_random_seed)
    assert np.all(np.abs(X_ref - X).max(axis=(0, 2)) / scale <= epsilon * (1 + 1e-4))  # the reference is honest
    suite, ref = acc(victim, out.X_adv, y), acc(victim, X_ref, y)
    assert suite <= ref + 0.02, f"suite PGD {suite:.3f} vs reference PGD {ref:.3f} at epsilon={epsilon}"


class _CountingModel(nn.Module):
    """Counts the trials each forward pass sees."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen, self.grad = model, [], []

    def forward(self, x):
        self.seen.append(len(x))
        self.grad.append(torch.is_grad_enabled() and x.requires_grad)
        return self.model(x)


def test_pgd_leaves_fooled_trials_and_keeps_their_fooling_iterate(victim, attack_eval, acc):
    """White-box PGD stops stepping a trial at the first iterate that fools it: later passes see fewer trials, and
    every trial it reports fooled is fooled by the returned (in-budget) trial."""
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    counting = _CountingModel(victim)
    (out,) = LinfPGD(steps=20)(counting, X, y, epsilons=(0.25,), scale=scale, random_state=0)
    attack_passes = counting.seen[-21:]  # the 21 passes of the loop come last (after the template's checks)
    assert min(attack_passes) < max(attack_passes), counting.seen
    assert np.abs(out.X_adv - X).max(axis=(0, 2)).max() / scale.min() <= 0.25 * (1 + 1e-4) * scale.max() / scale.min()
    assert acc(victim, out.X_adv, y) < acc(victim, X, y)


def test_pgd_crafted_for_transfer_runs_every_step_on_every_trial(victim, attack_eval):
    """On a substitute (`_craft`), PGD must not stop at the substitute's first fooling iterate."""
    from eegrobust.attacks.base import BudgetSpace
    from eegrobust.attacks.budget import Bounds
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    counting = _CountingModel(BudgetSpace(victim.eval(), scale))
    S = torch.from_numpy(X / scale[None, :, None]).float()
    bounds = Bounds.from_data(S.numpy(), pad=1.0)
    LinfPGD(steps=10)._craft(counting, S, torch.from_numpy(y), epsilon=0.25, bounds=bounds, rng=None)
    assert counting.seen == [len(X)] * 11


def test_fgsm_takes_one_gradient_for_every_budget_and_matches_foolbox(victim, attack_eval):
    """FGSM's step at each budget equals foolbox's FGSM there, from a single backward pass for all budgets."""
    from eegrobust.attacks import FGSM
    from eegrobust.attacks._foolbox import fb, run_foolbox
    from eegrobust.attacks.base import BudgetSpace
    from eegrobust.attacks.budget import Bounds
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    counting = _CountingModel(victim)
    epsilons = (0.05, 0.1, 0.2)
    outs = FGSM()(counting, X, y, epsilons=epsilons, scale=scale)
    S = torch.from_numpy(X / scale[None, :, None]).float()
    bounds = Bounds.from_data(S.numpy(), pad=max(1.0, 2 * max(epsilons)))
    target = BudgetSpace(victim.eval(), scale)
    for eps, out in zip(epsilons, outs):
        ref = run_foolbox(fb.attacks.FGSM(), target, S, torch.from_numpy(y), budget=eps, bounds=bounds)
        np.testing.assert_allclose(out.X_adv, (ref * target.scale).numpy(), atol=1e-3 * scale.max())
    assert sum(counting.grad) == 2, counting.grad  # the template's gradient check, then one for all budgets
