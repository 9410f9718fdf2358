"""Hostile input to the Python API (issue 11): every case fails with a one-line error that names the value.

Covers `assert_robust` (units, labels, chance level, NaN models), attack parameters (validated when an attack is
built; derived from each registered attack's signature, so a new attack is covered automatically) and the
arguments of ``Attack.__call__``.
"""

import copy
import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import (
    ATTACKS,
    FGSM,
    CarliniWagnerL2,
    DeepFool,
    HopSkipJump,
    JacobianSubstitute,
    LinfPGD,
    ModelOutputError,
    QueryOracle,
    SquareAttack,
    TransferAttack,
    make_attack,
)
from eegrobust.data import ConfigError, DataError, epochs_to_data, make_synthetic_epochs
from eegrobust.harness.robustness import ChanceLevelError, RobustnessResult, assert_robust
from eegrobust.models import TrainConfig, build_model, fit_model

#: Small budgets so every registered attack runs in well under a second on the toy model.
FAST = {"linf_pgd": {"steps": 3}, "l2_pgd": {"steps": 3}, "deepfool": {"steps": 3}, "square": {"max_queries": 5},
        "hopskipjump": {"max_queries": 5}, "cw_l2": {"binary_search_steps": 1, "steps": 2},
        "band_pgd": {"steps": 3, "sfreq": 128.0}, "apgd_ce": {"steps": 3}, "apgd_dlr": {"steps": 3},
        "autoattack": {"steps": 3, "square_queries": 5}, "fmn": {"steps": 3}, "simba": {"max_queries": 5},
        "rays": {"max_queries": 5}}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def train(_one_thread):
    return epochs_to_data(make_synthetic_epochs(n_trials=64, random_state=0))


@pytest.fixture(scope="module")
def test_data(_one_thread):
    """40 held-out trials (microvolts), balanced: chance bound 0.625."""
    return epochs_to_data(make_synthetic_epochs(n_trials=40, random_state=1))


@pytest.fixture(scope="module")
def _toy(train):
    config = TrainConfig(max_epochs=3, patience=None, show_progress=False, lr=1e-2, val_fraction=0.0)
    return fit_model(build_model("toy", train, random_state=0), train, config)


@pytest.fixture
def toy(_toy):
    return copy.deepcopy(_toy)


def raises_one_line(exc, match, func, *args, **kwargs):
    """Assert ``func`` raises ``exc`` whose message matches ``match`` and is a single line."""
    with pytest.raises(exc, match=match) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value), str(info.value)
    return info.value


# ------------------------------------------------------------------------------------ assert_robust, (X, y)
def _xy(case, data):
    X, y = data.X.copy(), data.y.copy()
    if case == "volts":
        return X * 1e-6, y
    if case == "nanovolts":
        return X * 1e3, y
    if case == "y_float":
        return X, y + 0.5
    if case == "y_negative":
        return X, y - 1
    if case == "y_out_of_range":
        return X, np.where(y == 1, 5, y)
    if case == "y_short":
        return X, y[:-1]
    if case == "y_strings":
        return X, np.array(["left", "right"])[y]
    if case == "y_nan":
        return X, np.where(y == 1, np.nan, 0.0)
    if case == "X_nan":
        X[2, 1, 3] = np.nan
        return X, y
    if case == "X_2d":
        return X[:, 0], y
    if case == "X_strings":
        return X.astype(str), y
    raise AssertionError(case)


XY_CASES = [
    ("volts", DataError, r"median channel std of 1e-05, which looks like volts.*multiply by 1e6"),
    ("y_float", DataError, r"epochs y must hold integer class indices, got \d\.5 \(trial \d+\)"),
    ("y_negative", DataError, r"epochs y must hold class indices >= 0, got -1"),
    ("y_out_of_range", DataError, r"it has 2 outputs, the epochs have labels up to 5"),
    ("y_short", DataError, r"epochs y must have shape \(40,\).*got shape \(39,\)"),
    ("y_strings", TypeError, r"epochs y must hold integer class indices, got dtype <U5 \(first value '(left|right)'\)"),
    ("y_nan", DataError, r"epochs y must hold integer class indices, got nan"),
    ("X_nan", DataError, r"epochs X contains 1 NaN/Inf values \(first in trial 2\)"),
    ("X_2d", DataError, r"epochs X must have shape \(n_trials, n_chans, n_times\), got shape \(40, 128\)"),
    ("X_strings", TypeError, r"epochs X must hold real numbers \(microvolts\), got dtype <U"),
]


@pytest.mark.parametrize("case, exc, match", XY_CASES, ids=[c[0] for c in XY_CASES])
def test_assert_robust_bad_arrays(case, exc, match, toy, test_data):
    raises_one_line(exc, match, assert_robust, toy, _xy(case, test_data), epsilon=0.05)


def test_far_above_microvolts_is_refused(toy, test_data):
    """Microvolts mistaken for volts and converted again (x 1e6): not EEG either."""
    raises_one_line(DataError, r"median channel std of 1(\.\d+)?e\+07, far above EEG in microvolts",
                    assert_robust, toy, (test_data.X * 1e6, test_data.y))


def test_tuple_of_three_is_refused(toy, test_data):
    raises_one_line(DataError, r"must be \(X, y\), got a tuple of 3 items", assert_robust, toy,
                    (test_data.X, test_data.y, None))


@pytest.mark.parametrize("epochs", [[np.zeros((2, 4, 128)), [0, 1]], "sub-01-epo.fif", None], ids=["list", "str", "none"])
def test_epochs_of_wrong_type(epochs, toy):
    raises_one_line(TypeError, r"epochs must be an mne.Epochs, an EEGData or a tuple \(X, y\), got (list|str|NoneType)",
                    assert_robust, toy, epochs)


def test_microvolt_arrays_pass(toy, test_data):
    result = assert_robust(toy, (test_data.X, test_data.y), attack="fgsm", epsilon=0.01, max_drop=1.0)
    assert isinstance(result, RobustnessResult) and result.clean_accuracy > 0.9


# --------------------------------------------------------------------------------------------- chance level
class ConstantClass(nn.Module):
    """Predicts class 0 for every trial (finite logits)."""

    def forward(self, X):
        return torch.stack([X.sum((1, 2)) * 0 + 1.0, X.sum((1, 2)) * 0], 1)


def test_volts_cannot_pass_at_chance(toy, test_data):
    """The issue's case: X in volts used to pass with drop 0.000 at clean 0.475."""
    with pytest.raises(DataError, match="multiply by 1e6"):
        assert_robust(toy, (test_data.X * 1e-6, test_data.y), epsilon=0.05, max_drop=0.2)


@pytest.mark.parametrize("case", ["shuffled_labels", "constant_model"])
def test_chance_level_refused(case, toy, test_data):
    y = test_data.y
    if case == "shuffled_labels":
        y = np.random.default_rng(0).permutation(y)
        model, match = toy, r"clean accuracy 0\.\d+ on 40 trials is not above chance level 0\.625"
    else:
        model, match = ConstantClass(), r"clean accuracy 0\.500 .* predictions 40/40 of class 0"
    err = raises_one_line(ChanceLevelError, match, assert_robust, model, (test_data.X, y), epsilon=0.05)
    assert isinstance(err, AssertionError)  # a failing test, not an error, under pytest
    assert "meaningless" in str(err) and "allow_chance=True" in str(err)
    assert err.chance_level == 0.625 and err.n_trials == 40 and err.clean_accuracy <= 0.625


def test_chance_level_check_also_for_eegdata_and_epochs(test_data):
    with pytest.raises(ChanceLevelError, match="predictions 40/40 of class 0"):
        assert_robust(ConstantClass(), test_data)
    with pytest.raises(ChanceLevelError, match="predictions 40/40 of class 0"):
        assert_robust(ConstantClass(), make_synthetic_epochs(n_trials=40, random_state=1))


def test_allow_chance_evaluates_anyway(test_data):
    result = assert_robust(ConstantClass(), (test_data.X, test_data.y), attack="noise", epsilon=0.05,
                           allow_chance=True)
    assert result.clean_accuracy == 0.5 and result.drop == 0.0


def test_allow_chance_must_be_bool(toy, test_data):
    raises_one_line(TypeError, r"allow_chance must be True or False, got str 'yes'", assert_robust, toy, test_data,
                    allow_chance="yes")


@pytest.mark.parametrize("seed, exc, match", [
    (True, TypeError, r"random_state must be an int >= 0.*got bool True"),
    (1.5, TypeError, r"random_state must be an int >= 0.*got float 1\.5"),
    (-1, ConfigError, r"random_state must be an int >= 0.*got -1"),
])
def test_assert_robust_bad_seed(seed, exc, match, toy, test_data):
    raises_one_line(exc, match, assert_robust, toy, test_data, random_state=seed)


# ------------------------------------------------------------------------------------------- NaN models
class NaNLogits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, X):
        return self.model(X) * float("nan")


def _nan_weights(model):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return model


@pytest.mark.parametrize("kind", ["nan_weights", "nan_logits"])
def test_assert_robust_nan_model(kind, toy, test_data):
    model = _nan_weights(toy) if kind == "nan_weights" else NaNLogits(toy)
    err = raises_one_line(ModelOutputError, r"returned NaN/Inf logits on clean input \(40 trial\(s\)", assert_robust,
                          model, test_data)
    assert "stochastic" not in str(err)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_name_nan_logits(name, toy, test_data):
    """Every attack says the model returned NaN, not that stochastic defenses fake robustness."""
    attack = make_attack(name, **FAST.get(name, {}))
    err = raises_one_line(ModelOutputError, r"EEGDecoder returned NaN/Inf logits on clean input", attack,
                          _nan_weights(toy), test_data.X, test_data.y, epsilons=(0.1,))
    assert "stochastic" not in str(err)


class NaNOnlyOnSomeTrials(nn.Module):
    """Finite logits on the first trials (where the stochastic check looks), NaN on trials whose first sample > 0."""

    def __init__(self, model, X):
        super().__init__()
        self.model, self.first = model, torch.from_numpy(X[:2])

    def forward(self, X):
        out = self.model(X)
        nan = (X[:, 0, 0] > 0) & ~(X[:, None] == self.first[None]).all(-1).all(-1).any(1)
        return torch.where(nan[:, None], torch.full_like(out, float("nan")), out)


def test_nan_on_later_trials_is_found(toy, test_data):
    model = NaNOnlyOnSomeTrials(toy, test_data.X)
    raises_one_line(ModelOutputError, r"NaN/Inf logits on clean input \(\d+ trial\(s\) from trial \d+\)",
                    FGSM(), model, test_data.X, test_data.y, epsilons=(0.1,))


class ToyNaNGradient(nn.Module):
    """Finite outputs, NaN input gradients: ``sqrt(|x - x|)`` has an infinite derivative at 0."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, X):
        return self.model(X) + 0.0 * torch.sqrt((X - X.detach()).abs()).sum((1, 2))[:, None]


@pytest.mark.parametrize("name", sorted(n for n, c in ATTACKS.items() if c.threat_model == "white_box"))
def test_nan_gradients_are_named(name, toy, test_data):
    """foolbox's sign(NaN) is 0: without the check, L-inf attacks would stand still and report robustness."""
    raises_one_line(ModelOutputError, r"ToyNaNGradient has NaN/Inf input gradients on clean input \(40 of 40",
                    make_attack(name, **FAST.get(name, {})), ToyNaNGradient(toy), test_data.X, test_data.y,
                    epsilons=(0.1,))


def test_nan_gradients_of_a_surrogate_are_named(toy, test_data):
    attack = TransferAttack(surrogate=ToyNaNGradient(copy.deepcopy(toy)), base=FGSM())
    raises_one_line(ModelOutputError, r"ToyNaNGradient has NaN/Inf input gradients on clean input", attack, toy,
                    test_data.X, test_data.y, epsilons=(0.1,))


def test_nan_adversarial_trials_are_named(toy, test_data):
    """An attack whose result is not finite (the model's outputs went NaN near the input) is refused."""
    from eegrobust.attacks import Attack

    class Broken(Attack):
        name, threat_model = "broken", "control"

        def _run(self, target, S, labels, *, epsilon, bounds, rng):
            return S * float("nan")

    raises_one_line(ModelOutputError, r"Broken\(\) produced NaN/Inf trials at epsilon=0\.1", Broken(), toy,
                    test_data.X, test_data.y, epsilons=(0.1,))


def test_wrong_logit_shape(test_data):
    class OneOutput(nn.Module):
        def forward(self, X):
            return X.sum((1, 2))

    raises_one_line(ModelOutputError, r"must return logits of shape \(n_trials, n_outputs >= 2\), got \(2,\)",
                    FGSM(), OneOutput(), test_data.X, test_data.y, epsilons=(0.1,))


# ---------------------------------------------------------------------------------- attack parameters
def _numeric_params(cls):
    """(name, default) of each int/float keyword of ``cls.__init__`` (bools excluded)."""
    return [(p.name, p.default) for p in inspect.signature(cls.__init__).parameters.values()
            if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)]


def _bool_params(cls):
    return [p.name for p in inspect.signature(cls.__init__).parameters.values() if isinstance(p.default, bool)]


@pytest.fixture(scope="module")
def required(train):
    """Arguments without defaults, per wrapper class."""
    model = build_model("toy", train, random_state=0)
    return {TransferAttack: {"surrogate": model, "base": FGSM()},
            JacobianSubstitute: {"seed": train.subset(np.arange(8))},
            QueryOracle: {"victim": model}}


ALL_CLASSES = sorted({*ATTACKS.values(), TransferAttack, JacobianSubstitute, QueryOracle}, key=lambda c: c.__name__)
NUMERIC = [(cls, name, default) for cls in ALL_CLASSES for name, default in _numeric_params(cls)]
BOOLS = [(cls, name) for cls in ALL_CLASSES for name in _bool_params(cls)]


def test_every_numeric_parameter_is_listed():
    """The derivation finds the parameters the issue names (and so any new attack's)."""
    names = {(c.__name__, n) for c, n, _ in NUMERIC}
    assert {("LinfPGD", "steps"), ("LinfPGD", "rel_stepsize"), ("SquareAttack", "p_init"), ("DeepFool", "overshoot"),
            ("JacobianSubstitute", "rounds"), ("CarliniWagnerL2", "binary_search_steps")} <= names


@pytest.mark.parametrize("cls, name, default", NUMERIC, ids=[f"{c.__name__}-{n}" for c, n, _ in NUMERIC])
def test_negative_parameter_refused(cls, name, default, required):
    bad = -1 if isinstance(default, int) else -1.0
    raises_one_line(ConfigError, rf"{cls.__name__} {name} must be .*got {bad!r}\.$", cls,
                    **required.get(cls, {}), **{name: bad})


@pytest.mark.parametrize("cls, name, default", NUMERIC, ids=[f"{c.__name__}-{n}" for c, n, _ in NUMERIC])
def test_wrong_type_parameter_refused(cls, name, default, required):
    for bad in (True, "3", *([None] if name != "random_state" else []), *([1.5] if isinstance(default, int) else [])):
        err = raises_one_line(TypeError, rf"{cls.__name__} {name} must be .*got {type(bad).__name__} {bad!r}\.$",
                              cls, **required.get(cls, {}), **{name: bad})
        assert isinstance(err, ConfigError)  # config and CLI callers catch ValueError/ConfigError


@pytest.mark.parametrize("cls, name, default", [p for p in NUMERIC if isinstance(p[2], float)],
                         ids=[f"{c.__name__}-{n}" for c, n, d in NUMERIC if isinstance(d, float)])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_parameter_refused(cls, name, default, bad, required):
    raises_one_line(ConfigError, rf"{name} must be a finite number", cls, **required.get(cls, {}), **{name: bad})


@pytest.mark.parametrize("cls, name", BOOLS, ids=[f"{c.__name__}-{n}" for c, n in BOOLS])
def test_bool_parameter_refuses_strings(cls, name, required):
    raises_one_line(TypeError, rf"{name} must be True or False, got str 'False'", cls, **required.get(cls, {}),
                    **{name: "False"})


PARAM_CASES = [
    (LinfPGD, {"steps": -1}, ConfigError, r"LinfPGD steps must be an integer >= 1, got -1\."),
    (LinfPGD, {"steps": 0}, ConfigError, r"LinfPGD steps must be an integer >= 1, got 0\."),
    (LinfPGD, {"steps": 1.5}, TypeError, r"LinfPGD steps must be an integer >= 1, got float 1\.5\."),
    (LinfPGD, {"steps": True}, TypeError, r"LinfPGD steps must be an integer >= 1, got bool True\."),
    (LinfPGD, {"rel_stepsize": 0}, ConfigError, r"LinfPGD rel_stepsize must be a finite number in \(0, inf\), got 0"),
    (LinfPGD, {"restarts": 0}, ConfigError, r"LinfPGD restarts must be an integer >= 1, got 0"),
    (LinfPGD, {"random_start": "no"}, TypeError, r"LinfPGD random_start must be True or False, got str 'no'"),
    (DeepFool, {"overshoot": -0.1}, ConfigError, r"DeepFool overshoot must be a finite number in \[0, inf\), got -0\.1"),
    (DeepFool, {"steps": 0}, ConfigError, r"DeepFool steps must be an integer >= 1, got 0"),
    (CarliniWagnerL2, {"steps": 0}, ConfigError, r"CarliniWagnerL2 steps must be an integer >= 1, got 0"),
    (CarliniWagnerL2, {"binary_search_steps": 0}, ConfigError, r"binary_search_steps must be an integer >= 1, got 0"),
    (CarliniWagnerL2, {"initial_const": 0.0}, ConfigError, r"initial_const must be a finite number in \(0, inf\)"),
    (SquareAttack, {"p_init": 0.0}, ConfigError, r"SquareAttack p_init must be a finite number in \(0, 1\], got 0\.0"),
    (SquareAttack, {"p_init": 1.5}, ConfigError, r"SquareAttack p_init must be a finite number in \(0, 1\], got 1\.5"),
    (SquareAttack, {"max_queries": -5}, ConfigError, r"SquareAttack max_queries must be an integer >= 2 queries"),
    (SquareAttack, {"max_queries": 1}, ConfigError, r"max_queries must be an integer >= 2 .*got 1\."),
    (HopSkipJump, {"max_queries": 0}, ConfigError, r"HopSkipJump max_queries must be an integer >= 1"),
    (HopSkipJump, {"gradient_evals": 0}, ConfigError, r"HopSkipJump gradient_evals must be an integer >= 1, got 0"),
    (JacobianSubstitute, {"rounds": 0}, ConfigError, r"JacobianSubstitute rounds must be an integer >= 1, got 0"),
    (JacobianSubstitute, {"lam": 0.0}, ConfigError, r"JacobianSubstitute lam must be a finite number in \(0, inf\)"),
    (JacobianSubstitute, {"arch": "eegnett"}, ConfigError, r"JacobianSubstitute arch must be one of .*'eegnet'"),
    (JacobianSubstitute, {"base": "pgd"}, TypeError, r"JacobianSubstitute base must be a white-box attacks.Attack"),
    (JacobianSubstitute, {"train_config": {}}, TypeError, r"train_config must be a models.TrainConfig .*got dict"),
    (TransferAttack, {"base": SquareAttack()}, TypeError, r"base must be a white-box .*got SquareAttack\(max_quer"),
    (TransferAttack, {"surrogate_name": 3}, TypeError, r"surrogate_name must be a str, got int"),
    (QueryOracle, {"max_queries": -1}, ConfigError, r"QueryOracle max_queries must be an integer >= 0, got -1"),
    (QueryOracle, {"victim": "model"}, TypeError, r"QueryOracle victim must be a torch.nn.Module, got str"),
]


@pytest.mark.parametrize("cls, kwargs, exc, match", PARAM_CASES,
                         ids=[f"{c.__name__}-{next(iter(k))}={next(iter(k.values()))!r}" for c, k, _, _ in PARAM_CASES])
def test_attack_parameters_named(cls, kwargs, exc, match, required):
    raises_one_line(exc, match, cls, **{**required.get(cls, {}), **kwargs})


def test_valid_parameters_stored_as_given(required):
    assert LinfPGD(steps=np.int64(5)).steps == 5 and type(LinfPGD(steps=np.int64(5)).steps) is int
    assert SquareAttack(p_init=1.0).p_init == 1.0
    assert DeepFool(overshoot=0).overshoot == 0
    assert QueryOracle(**required[QueryOracle], max_queries=0).max_queries == 0
    assert JacobianSubstitute(**required[JacobianSubstitute], random_state=None).random_state is None


# -------------------------------------------------------------------------------- Attack.__call__ inputs
def _call_args(case, data):
    X, y, kw = data.X.copy(), data.y.copy(), {}
    updates = {
        "eps_nan": {"epsilons": (0.1, math.nan)}, "eps_inf": {"epsilons": (math.inf,)},
        "eps_negative": {"epsilons": (-0.1,)}, "eps_string": {"epsilons": "0.1"}, "eps_strings": {"epsilons": ["0.1"]},
        "eps_bool": {"epsilons": True}, "eps_empty": {"epsilons": ()},
        "scale_zero": {"scale": np.array([1.0, 0.0, 1.0, 1.0])}, "scale_nan": {"scale": np.array([1, np.nan, 1, 1])},
        "scale_shape": {"scale": np.ones(3)}, "scale_string": {"scale": "abc"},
        "seed_str": {"random_state": "0"}, "seed_float": {"random_state": 1.5}, "seed_bool": {"random_state": True},
        "seed_negative": {"random_state": -1}, "batch_zero": {"batch_size": 0},
        "unit_with_scale": {"unit": "mV", "scale": np.ones(4)},
    }
    kw.update(updates.get(case, {}))
    if case == "X_nan":
        X[1, 2, 3] = np.inf
    elif case == "y_short":
        y = y[:-2]
    elif case == "y_out_of_range":
        y = np.where(y == 1, 7, y)
    elif case == "y_float":
        y = y + 0.25
    elif case == "y_strings":
        y = y.astype(str)
    return X, y, kw


CALL_CASES = [
    ("eps_nan", ConfigError, r"epsilons must be finite and >= 0, got nan"),
    ("eps_inf", ConfigError, r"epsilons must be finite and >= 0, got inf"),
    ("eps_negative", ConfigError, r"epsilons must be finite and >= 0, got -0\.1"),
    ("eps_string", ConfigError, r"epsilons must be numbers, got '0\.1'"),
    ("eps_strings", ConfigError, r"epsilons must be numbers, got \['0\.1'\]"),
    ("eps_bool", ConfigError, r"epsilons must be numbers, got \(True,\)"),
    ("eps_empty", ConfigError, r"epsilons must be non-empty"),
    ("scale_zero", ConfigError, r"scale must be 4 positive values .*got 0\.0 for channel 1"),
    ("scale_nan", ConfigError, r"scale must be 4 positive values .*got nan for channel 1"),
    ("scale_shape", ConfigError, r"scale must be 4 positive values .*got shape \(3,\)"),
    ("scale_string", ConfigError, r"scale must be 4 positive values .*got 'abc'"),
    ("X_nan", DataError, r"X contains 1 NaN/Inf values \(first in trial 1\)"),
    ("y_short", DataError, r"y must have shape \(40,\) .*got shape \(38,\)"),
    ("y_out_of_range", DataError, r"y \(labels\) must lie in \[0, 1\] for a model with 2 outputs, got \[7\]"),
    ("y_float", DataError, r"y must hold integer class indices, got \d\.25 \(trial \d+\)"),
    ("y_strings", TypeError, r"y must hold integer class indices, got dtype <U"),
    ("seed_str", TypeError, r"random_state must be an int >= 0, a numpy Generator or None, got str '0'"),
    ("seed_float", TypeError, r"random_state must be .*got float 1\.5"),
    ("seed_bool", TypeError, r"random_state must be .*got bool True"),
    ("seed_negative", ConfigError, r"random_state must be .*got -1"),
    ("batch_zero", ConfigError, r"batch_size must be an integer >= 1, got 0"),
    ("unit_with_scale", ConfigError, r"budget unit must be one of \['rel', 'uV'\], got 'mV'"),
]


@pytest.mark.parametrize("name", ["fgsm", "deepfool", "square", "noise"])
@pytest.mark.parametrize("case, exc, match", CALL_CASES, ids=[c[0] for c in CALL_CASES])
def test_attack_call_inputs(case, exc, match, name, toy, test_data):
    X, y, kw = _call_args(case, test_data)
    kw.setdefault("epsilons", (0.1,))
    raises_one_line(exc, match, make_attack(name, **FAST.get(name, {})), toy, X, y, **kw)
