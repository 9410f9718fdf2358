"""Bad input fails early and names the value (STYLE.md section 4); attacks describe themselves."""

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import (
    ATTACKS,
    THREAT_MODELS,
    HopSkipJump,
    LinfPGD,
    SquareAttack,
    attack_names,
    check_epsilons,
    make_attack,
)
from eegrobust.data import ConfigError, DataError


# ------------------------------------------------------------------------------------------------ registry
def test_unknown_attack_suggests_name():
    with pytest.raises(ValueError, match="Did you mean 'linf_pgd'"):
        make_attack("lnf_pgd")


def test_unknown_attack_parameter_is_type_error():
    with pytest.raises(TypeError, match="stepz"):
        make_attack("linf_pgd", stepz=10)


def test_attack_names_by_threat_model():
    assert attack_names() == sorted(ATTACKS)
    assert attack_names("black_box") == ["hopskipjump", "rays", "simba", "square"]
    assert attack_names("control") == ["noise"]
    assert {"fgsm", "linf_pgd", "deepfool"} <= set(attack_names("white_box"))
    assert all(ATTACKS[n].threat_model in THREAT_MODELS for n in attack_names())


# --------------------------------------------------------------------------------------------------- input
@pytest.mark.parametrize("epsilons", [(), (-0.1,), ("a",), (0.1, float("nan")), (float("inf"),)],
                         ids=["empty", "negative", "string", "nan", "inf"])
@pytest.mark.parametrize("name", ["linf_pgd", "deepfool", "noise"])
def test_bad_epsilons(name, epsilons, trained_toy, attack_eval):
    with pytest.raises(ValueError, match="epsilons"):
        make_attack(name)(trained_toy, attack_eval.X, attack_eval.y, epsilons=epsilons)


def test_single_epsilon_accepted(trained_toy, attack_eval):
    assert check_epsilons(0.1) == (0.1,)
    assert check_epsilons(np.array([0.3, 0.1])) == (0.3, 0.1)
    (out,) = make_attack("noise")(trained_toy, attack_eval.X, attack_eval.y, epsilons=0.1)
    assert out.epsilon == 0.1


def test_numpy_float32_epsilon_accepted():
    assert check_epsilons(np.float32(0.5)) == (0.5,)


class NotAModule:
    def __call__(self, X):
        return X


@pytest.mark.parametrize("name", attack_names())
def test_model_must_be_module(name, attack_eval):
    with pytest.raises(TypeError, match="got NotAModule"):
        make_attack(name)(NotAModule(), attack_eval.X, attack_eval.y, epsilons=(0.1,))


@pytest.mark.parametrize("y_len", [0, 31, 33])
def test_y_length_checked(y_len, trained_toy, attack_eval):
    with pytest.raises(DataError, match=r"y must have shape \(32,\)"):
        make_attack("fgsm")(trained_toy, attack_eval.X, np.zeros(y_len, int), epsilons=(0.1,))


@pytest.mark.parametrize("name", ["fgsm", "deepfool", "noise"])
def test_y_out_of_range_checked(name, trained_toy, attack_eval):
    y = np.full(len(attack_eval.X), 5)  # two classes
    with pytest.raises(ValueError, match="y"):
        make_attack(name)(trained_toy, attack_eval.X, y, epsilons=(0.1,))


def test_X_must_be_3d(trained_toy, attack_eval):
    with pytest.raises(DataError, match=r"X must have shape \(n_trials, n_chans, n_times\), got shape \(32, 512\)"):
        make_attack("fgsm")(trained_toy, attack_eval.X.reshape(32, -1), attack_eval.y, epsilons=(0.1,))


def test_X_must_be_finite(trained_toy, attack_eval):
    X = attack_eval.X.copy()
    X[3, 1, 7] = np.nan
    with pytest.raises(DataError, match="NaN"):
        make_attack("fgsm")(trained_toy, X, attack_eval.y, epsilons=(0.1,))


@pytest.mark.parametrize("scale", [np.ones(3), np.array([1.0, 0.0, 1.0, 1.0]), -np.ones(4)],
                         ids=["wrong_length", "zero", "negative"])
def test_bad_scale(scale, trained_toy, attack_eval):
    with pytest.raises(ConfigError, match="scale must be 4 positive values"):
        make_attack("fgsm")(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,), scale=scale)


def test_bad_unit(trained_toy, attack_eval):
    with pytest.raises(ValueError, match="budget unit .* got 'mV'"):
        make_attack("fgsm")(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,), unit="mV")


def test_bad_random_state(trained_toy, attack_eval):
    with pytest.raises(TypeError, match="random_state .* got str"):
        make_attack("noise")(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,), random_state="0")


@pytest.mark.parametrize("value", [0, -1, 1.5], ids=["zero", "negative", "float"])
def test_hopskipjump_chunk_must_be_positive_int(value):
    with pytest.raises(ValueError, match="chunk"):
        HopSkipJump(chunk=value)


@pytest.mark.parametrize("cls", [SquareAttack, HopSkipJump])
@pytest.mark.parametrize("value", [0, -5, 2.5, None], ids=["zero", "negative", "float", "none"])
def test_query_budget_must_be_positive_int(cls, value):
    with pytest.raises(ValueError, match="max_queries"):
        cls(max_queries=value)


# ------------------------------------------------------------------------------------- stochastic models
class AlwaysDropout(nn.Module):
    """Dropout that ignores eval mode: a 'randomized defense' that fakes robustness."""

    def forward(self, X):
        return nn.functional.dropout(X, p=0.5, training=True)


@pytest.mark.parametrize("name", attack_names())
def test_stochastic_model_refused(name, trained_toy, attack_eval, fast_attack):
    model = nn.Sequential(AlwaysDropout(), trained_toy)
    with pytest.raises(ValueError, match="different outputs"):
        fast_attack(name)(model, attack_eval.X, attack_eval.y, epsilons=(0.1,))
    assert model.training  # restored even when the call fails


def test_ordinary_dropout_accepted(trained_toy, attack_eval):
    """Dropout that respects eval mode is deterministic under attack: no false alarm."""
    model = nn.Sequential(nn.Dropout(0.5), trained_toy).train()
    (out,) = make_attack("fgsm")(model, attack_eval.X, attack_eval.y, epsilons=(0.1,))
    assert out.X_adv.shape == attack_eval.X.shape


# ---------------------------------------------------------------------------------------------------- repr
@pytest.mark.parametrize("name", attack_names())
def test_repr_lists_parameters(name):
    attack = make_attack(name)
    text = repr(attack)
    assert text.startswith(f"{type(attack).__name__}(") and text.endswith(")")
    for key, value in attack.get_params().items():
        assert f"{key}={value!r}" in text


def test_repr_examples():
    assert repr(LinfPGD()) == "LinfPGD(steps=40, rel_stepsize=2.5, random_start=True, restarts=1)"
    assert "steps=7" in repr(LinfPGD(steps=7))
    assert "max_queries=50" in repr(SquareAttack(max_queries=50))
    assert repr(make_attack("fgsm")) == "FGSM()"


def test_params_stored_unchanged():
    """sklearn convention: __init__ stores its keywords as given (so cloning and grids work)."""
    params = {"steps": 3, "rel_stepsize": 1.0, "random_start": False, "restarts": 2}
    assert LinfPGD(**params).get_params() == params
    assert type(LinfPGD(**params))(**LinfPGD(**params).get_params()).get_params() == params


def test_grad_mode_and_global_rng_untouched(trained_toy, attack_eval):
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    make_attack("linf_pgd")(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1, 0.3), random_state=1)
    make_attack("noise")(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,), random_state=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
    assert torch.is_grad_enabled()


def test_boolean_trials_are_not_microvolts(trained_toy, attack_eval):
    from eegrobust.attacks._params import DataTypeError

    with pytest.raises(DataTypeError, match="must hold real numbers \\(microvolts\\), got dtype bool"):
        make_attack("fgsm")(trained_toy, attack_eval.X > 0, attack_eval.y, epsilons=[0.1])
