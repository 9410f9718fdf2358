"""Robustness assertions for users' test suites: `assert_robust` and `parametrize_with_attacks`.

The pytest plugin (`harness.pytest_plugin`) hands these out as fixtures and re-exports them; this module imports
torch, so the plugin imports it only when a test asks for it.

Evaluation follows AutoAttack, as `harness.suite.run_suite` does: clean accuracy first, then the attack runs on
the trials that are classified correctly, and robust accuracy counts a trial only if it is correct before and
after. The budget is one epsilon in the units of `attacks.budget` (relative to each channel's std by default),
with the per-channel scale taken from the epochs under test.

Before attacking, the trials are checked: they must look like microvolts (volts are refused, "multiply by 1e6"),
labels must be class indices of the model's outputs, the model must give finite logits, and its clean accuracy
must beat chance (the one-sided 95 % binomial bound of always predicting the majority class, as
`harness.audit.chance_bound`). A model at chance has nothing to lose, so without that check it would "pass" with a
drop of 0; `ChanceLevelError` says so unless ``allow_chance=True``.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.stats import binom
from torch import nn

from ..attacks import Attack, channel_scale, make_attack
from ..attacks._params import check_bool, check_class_labels, check_seed, check_X_numeric
from ..attacks.base import check_logits
from ..attacks.budget import BUDGET_UNITS, check_epsilons, pooled_snr_db
from ..attacks.registry import ATTACKS
from ..data import EEGData, epochs_to_data
from ..data._checks import (ConfigError, DataError, EEGRobustError, check_microvolts, check_option,
                            check_random_state, check_X)
from ..models import conform_data, predict_logits
from .metrics import exceeds


__all__ = ["ATTACK_ALIASES", "ChanceLevelError", "RobustnessError", "RobustnessResult", "assert_accuracy_drop_below",
           "assert_robust", "parametrize_with_attacks", "resolve_attack"]

#: Short names accepted for registered attacks.
ATTACK_ALIASES = {"pgd": "linf_pgd", "linf-pgd": "linf_pgd", "l2-pgd": "l2_pgd", "cw": "cw_l2"}


class RobustnessError(AssertionError):
    """A model lost more accuracy under attack than allowed; ``result`` holds the measured numbers."""

    def __init__(self, message: str, result: RobustnessResult):
        super().__init__(message)
        self.result = result


class ChanceLevelError(EEGRobustError, AssertionError):
    """The model is at chance on the trials, so no robustness number can be measured (``allow_chance=True`` skips).

    Attributes ``clean_accuracy``, ``chance_level`` (the bound it had to beat) and ``n_trials``.
    """

    def __init__(self, message: str, *, clean_accuracy: float, chance_level: float, n_trials: int):
        super().__init__(message)
        self.clean_accuracy, self.chance_level, self.n_trials = clean_accuracy, chance_level, n_trials


@dataclass(frozen=True)
class RobustnessResult:
    """What `assert_robust` measured (accuracies are fractions of all ``n_trials``).

    ``snr_db`` is the signal-to-perturbation ratio pooled over the attacked trials, against the demeaned signal
    (`attacks.budget.pooled_snr_db`; inf when nothing changed); ``budget_snr_db`` is that of a perturbation that
    uses the whole L-inf budget on every sample of every trial (``-20 log10(epsilon)`` in unit "rel").
    """

    attack: str
    epsilon: float
    unit: str
    seed: int | None
    n_trials: int
    clean_accuracy: float
    adversarial_accuracy: float
    clean_bca: float
    adversarial_bca: float
    drop: float
    max_drop: float
    snr_db: float
    budget_snr_db: float
    n_perturbed: int

    @property
    def passed(self) -> bool:
        return not exceeds(self.drop, self.max_drop)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        return (f"under {self.attack} at epsilon={self.epsilon:g} ({self.unit}): clean {self.clean_accuracy:.3f} "
                f"-> adversarial {self.adversarial_accuracy:.3f} (BCA {self.clean_bca:.3f} -> "
                f"{self.adversarial_bca:.3f}), SNR {self.snr_db:.1f} dB, seed {self.seed}, {self.n_trials} trials")


def resolve_attack(attack, *, preset=None) -> Attack:
    """An `Attack` from a registry name (or alias such as ``"pgd"``) or an `Attack` instance.

    With a preset (`harness.config.SuiteConfig`), PGD attacks get its ``pgd_steps`` and every query attack
    (an attack whose constructor takes ``max_queries``: Square, SimBA, RayS, HopSkipJump) its ``max_queries``.
    """
    if isinstance(attack, Attack):
        return attack
    if not isinstance(attack, str):
        raise TypeError(f"attack must be a registered attack name or an attacks.Attack, got {type(attack).__name__}.")
    name = ATTACK_ALIASES.get(attack, attack)
    check_option("attack", name, [*ATTACKS, *ATTACK_ALIASES])
    params = {}
    if preset is not None:
        if name.endswith("pgd"):
            params["steps"] = preset.pgd_steps
        elif "max_queries" in inspect.signature(ATTACKS[name]).parameters:
            params["max_queries"] = preset.max_queries
    return make_attack(name, **params)


def _as_data(epochs) -> EEGData:
    """EEGData in microvolts from EEGData, mne.Epochs or ``(X, y)``; the units are checked on every path."""
    if isinstance(epochs, EEGData):
        check_microvolts(epochs.X, name="the epochs (EEGData.X)")
        return epochs
    if isinstance(epochs, tuple):
        if len(epochs) != 2:
            raise DataError(f"epochs as a tuple must be (X, y), got a tuple of {len(epochs)} items.")
        X = check_X(check_X_numeric(epochs[0], name="epochs X"), name="epochs X").astype(np.float32, copy=False)
        y = check_class_labels(epochs[1], len(X), name="epochs y")
        check_microvolts(X, name="epochs X")
        n_classes = int(y.max()) + 1
        return EEGData(X, y, 1.0, tuple(f"ch{i}" for i in range(X.shape[1])), tuple(map(str, range(n_classes))))
    import mne

    if not isinstance(epochs, mne.BaseEpochs):
        raise TypeError(f"epochs must be an mne.Epochs, an EEGData or a tuple (X, y), got {type(epochs).__name__}.")
    data = epochs_to_data(epochs)
    check_microvolts(data.X, name="the epochs (after conversion from volts to microvolts)")
    return data


def _chance_level(y: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """(majority-class fraction, its one-sided 1-alpha binomial bound), as `harness.audit.chance_bound`."""
    p0 = np.bincount(y).max() / len(y)
    return float(p0), float(binom.ppf(1 - alpha, len(y), p0) / len(y))


def _check_above_chance(model, data: EEGData) -> None:
    """Raise `ChanceLevelError` unless clean accuracy beats always predicting the majority class (95 %, one-sided)."""
    logits = predict_logits(model, data.X)
    check_logits(model, torch.from_numpy(logits), data.n_trials)
    pred = logits.argmax(1)
    acc = float(np.mean(pred == data.y))
    p0, bound = _chance_level(data.y)
    if acc > bound:
        return
    counts = np.bincount(pred, minlength=logits.shape[1])
    top = int(counts.argmax())
    std = float(np.median(np.std(data.X, axis=-1)))
    raise ChanceLevelError(
        f"clean accuracy {acc:.3f} on {data.n_trials} trials is not above chance level {bound:.3f} (one-sided 95 % "
        f"binomial bound of always predicting the majority class, {p0:.3f} of the trials), so a robustness number "
        f"would be meaningless. Checked: units (median channel std {std:.3g} uV), labels "
        f"{sorted(set(data.y.tolist()))} for {logits.shape[1]} model outputs, predictions {counts[top]}/"
        f"{data.n_trials} of class {top}. Check the units, that y follows the model's class order and that the model "
        "is trained for this task; pass allow_chance=True to evaluate anyway.",
        clean_accuracy=acc, chance_level=bound, n_trials=data.n_trials)


def _budget_snr(X: np.ndarray, scale: np.ndarray, epsilon: float) -> float:
    if epsilon == 0:
        return float("inf")
    delta = np.broadcast_to(epsilon * scale[None, :, None], X.shape)
    return pooled_snr_db(X, delta)


def _evaluate(model, data, atk, epsilon, unit, seed) -> dict:
    """One cell through `harness.cell.run_cell`, the evaluator every suite uses; its row at ``epsilon``."""
    from .cell import FoldContext, run_cell
    from .plan import AttackSpec, Cell
    from .results import model_hash

    epsilons = (0.0,) if epsilon == 0 else (0.0, float(epsilon))
    spec = AttackSpec(atk.threat_model, atk.name, (("repr", repr(atk)),), "", epsilons)
    cell = Cell(dataset="custom", subject="1", session="", fold="assert_robust", protocol="given", model="model",
                arch=str(getattr(model, "arch", "") or ""), arm="none", train_seed=None, attack=spec,
                attack_seed=seed if isinstance(seed, int) else 0, victim_id="m-" + model_hash(model)[:20],
                train_hash="", test_hash=data.data_hash(), budget_unit=unit)
    was_training = model.training
    try:
        result = run_cell(cell, model.eval(), FoldContext(data, unit), attack=atk)
    finally:
        model.train(was_training)
    return result.rows[-1]


def _session_defaults():
    """(seed, preset) chosen on the pytest command line of the running session, else (0, None)."""
    plugin = sys.modules.get(__package__ + ".pytest_plugin")  # loaded by pytest; pytest is not needed outside tests
    options = plugin.current_options() if plugin is not None else None
    if options is None:
        return 0, None
    from .config import PRESETS

    return options["seed"], PRESETS[options["preset"]]


def assert_robust(model, epochs, *, attack="linf_pgd", epsilon=None, max_drop=0.2, random_state=None,
                  unit="rel", preset=None, allow_chance=False, eps=None) -> RobustnessResult:
    """Assert that ``model`` loses at most ``max_drop`` accuracy on ``epochs`` under ``attack`` at ``epsilon``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps microvolt EEG of shape (n_trials, n_chans, n_times) to logits, e.g. a `models.EEGDecoder`. For a
        skorch/braindecode ``EEGClassifier`` pass ``clf.module_``.
    epochs : mne.Epochs, EEGData or (X, y)
        The evaluation trials (MNE epochs in volts; EEGData and X in microvolts).
    attack : str or attacks.Attack, default="linf_pgd"
        A registered attack name (`attacks.attack_names`), an alias (``"pgd"``, ``"cw"``), or an Attack instance
        (e.g. a `attacks.TransferAttack` with its surrogate).
    epsilon : float, default=0.05
        The budget, in ``unit``. ``eps`` is accepted as an alias.
    max_drop : float in [0, 1], default=0.2
        Largest allowed ``clean accuracy - robust accuracy``.
    random_state : int or None, default=None
        Seed of the attack. None: the ``--robustness-seed`` of the running pytest session (0 outside pytest).
    unit : {"rel", "uV"}, default="rel"
        Epsilon relative to each channel's std, or in microvolts.
    preset : str, SuiteConfig or None, default=None
        Sets the attack strength (PGD steps, black-box query budget; see `resolve_attack`). None: the
        ``--robustness-preset`` of the running pytest session (the attacks' own defaults outside pytest).
    allow_chance : bool, default=False
        Evaluate even when clean accuracy is not above chance (the one-sided 95 % binomial bound of always
        predicting the majority class). By default that raises `ChanceLevelError`: a model at chance has nothing
        to lose, so it would "pass" with a drop of 0.

    Returns
    -------
    result : RobustnessResult
        The measured numbers, when the assertion holds.

    Raises
    ------
    RobustnessError
        (an AssertionError) when the drop exceeds ``max_drop``; the message gives clean and adversarial accuracy
        (raw and balanced), epsilon, SNR, seed and the number of trials.
    ChanceLevelError
        (an AssertionError) when clean accuracy is not above chance and ``allow_chance`` is False; the message
        says what was checked (units, labels, the class balance of the predictions).
    DataError
        When the epochs do not fit the model (the message names both shapes or channel lists), do not look like
        microvolts (volts: multiply by 1e6), or their labels are not class indices of the model's outputs.
    attacks.ModelOutputError
        When the model returns NaN/Inf logits on the clean trials.
    ValueError
        For ``max_drop`` outside [0, 1], a negative or non-finite epsilon, or an unknown attack or unit.
    """
    __tracebackhide__ = True  # a failure points at the user's test line, not at this helper
    if eps is not None:
        if epsilon is not None and float(epsilon) != float(eps):
            raise ConfigError(f"pass either epsilon= or eps=, not both (got epsilon={epsilon!r}, eps={eps!r}).")
        epsilon = eps
    epsilon = 0.05 if epsilon is None else epsilon
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.number)):
        raise ConfigError(f"epsilon must be one number, got {epsilon!r}; use parametrize_with_attacks for several.")
    (epsilon,) = check_epsilons(epsilon)
    if (isinstance(max_drop, bool) or not isinstance(max_drop, (int, float, np.number))
            or not 0 <= float(max_drop) <= 1):
        raise ConfigError(f"max_drop must be a number in [0, 1] (a fraction of accuracy), got {max_drop!r}.")
    max_drop = float(max_drop)
    check_option("unit", unit, BUDGET_UNITS)
    session_seed, session_preset = _session_defaults()
    seed = session_seed if random_state is None else random_state
    check_random_state(check_seed(seed))
    allow_chance = check_bool("", "allow_chance", allow_chance)
    if isinstance(preset, str):
        from .config import PRESETS

        check_option("preset", preset, PRESETS)
        preset = PRESETS[preset]
    elif preset is None:
        preset = session_preset
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                        "For a skorch/braindecode EEGClassifier pass clf.module_.")
    atk = resolve_attack(attack, preset=preset)
    data = conform_data(model, _as_data(epochs))
    if not allow_chance:
        _check_above_chance(model, data)
    row = _evaluate(model, data, atk, epsilon, unit, seed)
    scale = channel_scale(data.X, unit)
    result = RobustnessResult(
        attack=atk.name, epsilon=float(epsilon), unit=unit, seed=seed if isinstance(seed, (int, type(None))) else None,
        n_trials=data.n_trials, clean_accuracy=row["clean_rca"], adversarial_accuracy=row["adv_rca"],
        clean_bca=row["clean_bca"], adversarial_bca=row["adv_bca"], drop=row["drop"], max_drop=max_drop,
        snr_db=row["snr_db"], budget_snr_db=_budget_snr(data.X, scale, epsilon), n_perturbed=row["n_perturbed"],
    )
    if not result.passed:
        raise RobustnessError(
            f"robust accuracy dropped by {result.drop:.3f} > max_drop {max_drop:.3f} {result.describe()}", result)
    return result


#: The name STYLE.md section 8 uses.
assert_accuracy_drop_below = assert_robust


def parametrize_with_attacks(attacks, epsilons):
    """``pytest.mark.parametrize("attack,epsilon", ...)`` over every attack x epsilon, with readable ids.

    Modelled on sklearn's ``parametrize_with_checks``: ids look like ``linf_pgd-eps0.05``.

    Parameters
    ----------
    attacks : str, Attack or sequence of them
        Registered names or aliases (checked now, with a "did you mean"), or Attack instances.
    epsilons : float or sequence of float
        Budgets (finite, >= 0).

    Examples
    --------
    >>> @parametrize_with_attacks(["fgsm", "linf_pgd"], [0.01, 0.05])
    ... def test_robust(model, epochs, attack, epsilon, assert_robust):
    ...     assert_robust(model, epochs, attack=attack, epsilon=epsilon, max_drop=0.2)
    """
    import pytest

    if isinstance(attacks, (str, Attack)):
        attacks = [attacks]
    attacks = list(attacks)
    if not attacks:
        raise ConfigError("attacks must be non-empty. Example: parametrize_with_attacks(['linf_pgd'], [0.05]).")
    names = []
    for a in attacks:
        if isinstance(a, Attack):
            names.append(a.name or type(a).__name__)
        elif isinstance(a, str):
            check_option("attack", a, [*ATTACKS, *ATTACK_ALIASES])
            names.append(ATTACK_ALIASES.get(a, a))
        else:
            raise TypeError(f"attacks must hold attack names or attacks.Attack instances, got {type(a).__name__}.")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"attacks name {twice} more than once (aliases included, e.g. 'pgd' is 'linf_pgd'); give "
                          "each attack once.")
    epsilons = check_epsilons(epsilons)
    if len(set(epsilons)) < len(epsilons):
        raise ConfigError(f"epsilons repeat a budget: {list(epsilons)}; give each budget once.")
    # ids as precise as the budgets (%g gave 0.1 and 0.1000001 the same id)
    params = [pytest.param(a, e, id=f"{n}-eps{e:.12g}") for a, n in zip(attacks, names) for e in epsilons]
    return pytest.mark.parametrize("attack,epsilon", params)
