"""Invariants every registered attack must meet (STYLE.md section 7), parametrized from the registry."""

import numpy as np
import pytest
import torch

from eegrobust.attacks import ATTACKS, attack_names, channel_scale, make_attack

#: Attacks that draw random numbers (random starts, noise, query directions); the rest are deterministic.
RANDOMIZED = {"apgd_ce", "apgd_dlr", "autoattack", "band_pgd", "hopskipjump", "l2_pgd", "linf_pgd", "noise", "rays",
              "simba", "square", "uap", "l2_apgd_ce", "l2_apgd_dlr"}


@pytest.mark.parametrize("name", attack_names())
def test_registry_names_match_classes(name):
    attack = make_attack(name)
    assert attack.name == name
    assert isinstance(attack, ATTACKS[name])
    assert attack.norm in ("linf", "l2")


@pytest.mark.parametrize("name", attack_names())
def test_perturbation_within_budget(name, victim, attack_eval, fast_attack, within_budget):
    X, y = attack_eval.X, attack_eval.y
    attack = fast_attack(name)
    scale = channel_scale(X)
    epsilons = (0.3, 0.0, 0.05, 1.0)  # unsorted on purpose: each output must respect its own epsilon
    outputs = attack(victim, X, y, epsilons=epsilons)
    for out in outputs:
        within_budget(attack, out, X, scale)
    if name not in ("square", "hopskipjump"):  # black-box attacks may fail to move at 50/300 queries
        assert np.any(outputs[-1].X_adv != X), f"{attack!r} left every trial clean at epsilon=1.0"


@pytest.mark.parametrize("name", attack_names())
def test_budget_follows_given_scale(name, trained_toy, attack_eval, fast_attack, within_budget):
    """An explicit ``scale`` (here 2 uV on every channel) is the budget unit, whatever the data's std."""
    X, y = attack_eval.X, attack_eval.y
    attack = fast_attack(name)
    scale = np.full(X.shape[1], 2.0)
    (out,) = attack(trained_toy, X, y, epsilons=(0.5,), scale=scale)
    within_budget(attack, out, X, scale)


@pytest.mark.parametrize("name", attack_names())
def test_microvolt_unit(name, trained_toy, attack_eval, fast_attack, within_budget):
    X, y = attack_eval.X, attack_eval.y
    attack = fast_attack(name)
    (out,) = attack(trained_toy, X, y, epsilons=(3.0,), unit="uV")
    within_budget(attack, out, X, np.ones(X.shape[1]))


@pytest.mark.parametrize("name", attack_names())
def test_epsilon_zero_is_identity(name, trained_toy, attack_eval, fast_attack, acc):
    X, y = attack_eval.X, attack_eval.y
    out0, _ = fast_attack(name)(trained_toy, X, y, epsilons=(0.0, 0.3))
    assert out0.epsilon == 0.0
    np.testing.assert_array_equal(out0.X_adv, X)
    assert acc(trained_toy, out0.X_adv, y) == acc(trained_toy, X, y)


@pytest.mark.parametrize("name", attack_names())
def test_shape_dtype_and_epsilon_order(name, trained_toy, attack_eval, fast_attack):
    X = attack_eval.X.astype(np.float64)  # float64 in, float32 out
    X_before = X.copy()
    epsilons = (0.2, 0.0, 0.1, 0.05)
    outputs = fast_attack(name)(trained_toy, X, attack_eval.y, epsilons=epsilons)
    assert [out.epsilon for out in outputs] == list(epsilons)
    for out in outputs:
        assert out.X_adv.shape == X.shape
        assert out.X_adv.dtype == np.float32
        assert not np.shares_memory(out.X_adv, X)
    np.testing.assert_array_equal(X, X_before)  # the input is never written to


@pytest.mark.parametrize("name", attack_names())
@pytest.mark.parametrize("training", [True, False], ids=["train_mode", "eval_mode"])
def test_model_state_restored(name, training, trained_toy, attack_eval, fast_attack):
    model = trained_toy.train(training)
    model.net.final_layer.bias.requires_grad_(False)
    grads = [p.requires_grad for p in model.parameters()]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    fast_attack(name)(model, attack_eval.X, attack_eval.y, epsilons=(0.1, 0.3))
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == grads
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0, msg=f"attack changed {k}")


def test_per_module_training_flags_restored(trained_eegnet, attack_eval):
    """A model trained with a frozen (eval-mode) BatchNorm keeps that BatchNorm frozen after an attack."""
    model = trained_eegnet.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    bns[0].eval()
    make_attack("fgsm")(model, attack_eval.X, attack_eval.y, epsilons=(0.1,))
    assert model.training and not bns[0].training


@pytest.mark.parametrize("name", attack_names())
def test_same_random_state_same_result(name, trained_toy, attack_eval, fast_attack, global_random_seed):
    X, y = attack_eval.X, attack_eval.y
    runs = [fast_attack(name)(trained_toy, X, y, epsilons=(0.3, 1.0), random_state=global_random_seed)
            for _ in range(2)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a.X_adv, b.X_adv)
        if a.n_queries is not None:
            np.testing.assert_array_equal(a.n_queries, b.n_queries)


@pytest.mark.parametrize("name", attack_names())
def test_random_state_matters_only_for_randomized(name, trained_eegnet, attack_eval, fast_attack,
                                                  global_random_seed):
    """EEGNet, not the toy: on a linear model PGD ends in the same corner of the ball from any start."""
    X, y = attack_eval.X, attack_eval.y
    a, b = (fast_attack(name)(trained_eegnet, X, y, epsilons=(0.3, 1.0), random_state=global_random_seed + k)
            for k in (0, 1))
    differ = any(not np.array_equal(p.X_adv, q.X_adv) for p, q in zip(a, b))
    assert differ == (name in RANDOMIZED)


def test_random_state_generator_accepted(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    a = make_attack("noise")(trained_toy, X, y, epsilons=(0.2,), random_state=np.random.default_rng(5))
    b = make_attack("noise")(trained_toy, X, y, epsilons=(0.2,), random_state=5)
    np.testing.assert_array_equal(a[0].X_adv, b[0].X_adv)


@pytest.mark.parametrize("name", ["fgsm", "linf_pgd", "noise"])
def test_linf_attacks_use_the_whole_budget(name, trained_toy, attack_eval):
    """On a linear model a fooled trial's perturbation reaches epsilon (a wrong unit would shrink it)."""
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    (out,) = make_attack(name)(trained_toy, X, y, epsilons=(0.2,))
    changed = np.any(out.X_adv != X, axis=(1, 2))
    assert changed.any()
    D = np.abs(out.X_adv[changed].astype(np.float64) - X[changed]) / scale[None, :, None]
    # PGD returns a trial at the first iterate that fools it: one fooled by its random start (uniform in the
    # ball) reaches 0.2 only up to the largest of its uniform draws; a wrong unit would be off by far more
    np.testing.assert_allclose(D.max(axis=(1, 2)), 0.2, rtol=1e-2 if name == "linf_pgd" else 1e-3)


def test_l2_pgd_reaches_l2_budget(trained_toy, attack_eval, within_budget):
    X, y = attack_eval.X, attack_eval.y
    attack = make_attack("l2_pgd")
    (out,) = attack(trained_toy, X, y, epsilons=(0.1,))
    norms, unit = within_budget.norms(attack, X, out.X_adv, channel_scale(X))
    fooled = norms > 0
    assert fooled.any()
    assert np.all(norms[fooled] >= 0.9 * 0.1 * unit)


@pytest.mark.parametrize("name", attack_names())
def test_output_fields(name, trained_toy, attack_eval, fast_attack):
    outputs = fast_attack(name)(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.0, 0.3))
    for out in outputs:
        assert (out.n_queries is not None) == (ATTACKS[name].threat_model == "black_box")
        assert (out.min_norm is not None) == ATTACKS[name].minimal
        if out.min_norm is not None:
            assert out.min_norm.shape == (len(attack_eval.X),)
            assert np.all(out.min_norm >= 0)
