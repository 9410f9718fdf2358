"""`SuiteConfig`: what a robustness suite runs, validated once and round-tripped through dicts and TOML."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..attacks.budget import BUDGET_UNITS, DEFAULT_EPSILONS, check_epsilons
from ..attacks.registry import attack_names
from ..attacks.substitute import SELECTIONS as SUBSTITUTE_SELECTIONS
from ..data._checks import ConfigError, check_option, first_repeat
from ..models import model_names
from .arms import Arm, parse_arms

THREATS = ("white_box", "gray_box", "black_box", "control")
#: Base attacks a gray-box or black-box substitute may transfer.
TRANSFER_BASES = ("fgsm", "ufgsm", "linf_pgd", "l2_pgd")
BLACK_BOX_ATTACKS = ("substitute", "simba", "square", "rays", "hopskipjump")
#: Score-based query attacks: each budget costs up to ``max_queries`` per trial, so ``query_epsilons`` limits them.
SCORE_ATTACKS = ("simba", "square")


def _tuple(value) -> tuple:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


@dataclass(frozen=True)
class SuiteConfig:
    """One robustness study: victims x threat models x attacks x epsilons x seeds.

    Parameters
    ----------
    dataset : str, default="scp1"
        Bundled dataset the demo trains and evaluates on (`data.bundled_names`).
    models : tuple of str
        Victim architectures (`models.model_names`) the demo trains.
    threat_models : tuple of str
        Any of "white_box", "gray_box", "black_box", "control".
    white_box : tuple of str
        White-box attacks (`attacks.attack_names("white_box")`).
    gray_box : tuple of str
        White-box attacks crafted on each gray-box substitute and transferred (`TRANSFER_BASES`).
    black_box : tuple of str
        "substitute" (Jacobian-augmented substitute, transfer with ``substitute_attack``), "simba" and "square"
        (score-based), "rays" and "hopskipjump" (decision-based).
    epsilons : tuple of float
        Budgets, relative to each channel's std (``unit="rel"``) or in microvolts (``unit="uV"``). 0 is always
        evaluated too, as the clean reference.
    seeds : tuple of int
        One full run per seed (attack randomness, substitutes' initial weights).
    n_trials : int or None
        Evaluate on the first ``n_trials`` of a stratified shuffle of the test split (None: all).
    n_seed_trials : int, default=150
        Black-box attacker's seed set, held out from the black-box evaluation trials.
    max_queries : int, default=500
        Per-trial query budget of SimBA, Square, RayS and HopSkipJump.
    query_epsilons : tuple of float or None
        Budgets at which the score-based query attacks (SimBA, Square) run, a subset of ``epsilons``; None: all of
        them. Each costs up to ``max_queries`` forward passes of every trial, so presets restrict them to keep within
        minutes; `SuiteConfig.make` with ``epsilons`` and without ``query_epsilons`` (the CLI's ``--eps``) resets
        them to None, so given budgets are the budgets every attack runs at.
    pgd_steps : int, default=40
        Steps of the white-box PGD attacks.
    transfer_steps : int, default=10
        Steps of PGD crafted on a substitute (gray-box, and the black-box Jacobian substitute). Transfer does not
        improve with more steps on SCP1 (bench/demo.json), and every step is paid on every trial: a transferred
        attack cannot stop at trials that already fool the victim.
    substitute_arch, substitute_rounds, substitute_attack
        Black-box Jacobian substitute: architecture (default "ensemble": EEGNet, Deep4Net and ShallowFBCSPNet grown
        together and attacked as one model; "agreement": the one of them that agrees most with the victim on held-out
        seed trials; or a model name), augmentation rounds, transferred attack. The "quick" and "standard" presets
        use one EEGNet (a third of the cost).
    train : dict
        `models.TrainConfig` fields for the victims and substitutes.
    arms : tuple of str, default=("none",)
        Training arms of the victims (`harness.arms`): each architecture is trained once per arm, e.g.
        ``("none", "pgd_at", "trades(beta=1)")``; every arm is evaluated by the same attacks. Budgets of arms are in
        ``unit``. Arms other than "none" need training data (they cannot apply to a given model). Gray-box
        substitutes are always trained without a defence (the attacker has the data, not the defence).
    """

    dataset: str = "scp1"
    models: tuple = ("eegnet", "deep4", "shallow")
    threat_models: tuple = THREATS
    white_box: tuple = ("fgsm", "ufgsm", "linf_pgd", "apgd_ce", "apgd_dlr", "fmn", "autoattack", "l2_pgd",
                        "l2_apgd_ce", "l2_apgd_dlr", "deepfool", "cw_l2", "band_pgd", "uap")
    gray_box: tuple = ("ufgsm", "linf_pgd")
    black_box: tuple = BLACK_BOX_ATTACKS
    epsilons: tuple = DEFAULT_EPSILONS
    unit: str = "rel"
    seeds: tuple = (0,)
    n_trials: int | None = None
    n_seed_trials: int = 150
    max_queries: int = 500
    query_epsilons: tuple | None = None
    pgd_steps: int = 40
    transfer_steps: int = 10
    substitute_arch: str = "ensemble"
    substitute_rounds: int = 3
    substitute_attack: str = "linf_pgd"
    train: dict = field(default_factory=dict)
    arms: tuple = ("none",)

    def __post_init__(self):
        for name in ("models", "threat_models", "white_box", "gray_box", "black_box", "seeds"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        object.__setattr__(self, "epsilons", check_epsilons(_tuple(self.epsilons), unique=True))
        if self.query_epsilons is not None:
            object.__setattr__(self, "query_epsilons", check_epsilons(_tuple(self.query_epsilons), unique=True,
                                                                         name="query_epsilons"))
            outside = [e for e in self.query_epsilons if e not in self.epsilons]
            if outside:  # a query attack would run at a budget no other attack has, which nobody asked for
                raise ConfigError(f"query_epsilons {outside[0]:g} is not one of epsilons "
                                  f"({', '.join(f'{e:g}' for e in self.epsilons)}); give a subset of epsilons, or "
                                  "None (the default) to run the query attacks at every budget.")
        object.__setattr__(self, "train", dict(self.train))
        object.__setattr__(self, "arms", parse_arms(self.arms))
        if self.unit in BUDGET_UNITS:
            for arm in self.arms:
                Arm.make(arm).check_unit(self.unit)
        problems = []

        def check(name, value, allowed):
            try:
                check_option(name, value, allowed)
            except ConfigError as err:
                problems.append(str(err))

        if not self.models:
            problems.append(f"models must name at least one model, e.g. {','.join(model_names()[:3])}; got none.")
        twice = first_repeat(self.models)
        if twice is not None:
            problems.append(f"models lists {twice!r} more than once ({','.join(self.models)}); give each model "
                            "once (several victims of one model: seeds).")
        for m in self.models:
            check("model", m, model_names())
        for t in self.threat_models:
            check("threat model", t, THREATS)
        for a in self.white_box:
            check("white-box attack", a, attack_names("white_box"))
        for a in self.gray_box:
            check("gray-box attack", a, TRANSFER_BASES)
        for a in self.black_box:
            check("black-box attack", a, BLACK_BOX_ATTACKS)
        check("substitute_attack", self.substitute_attack, TRANSFER_BASES)
        check("substitute_arch", self.substitute_arch, (*model_names(), *SUBSTITUTE_SELECTIONS))
        check("unit", self.unit, BUDGET_UNITS)
        for name, low in (("max_queries", 2), ("pgd_steps", 1), ("transfer_steps", 1), ("n_seed_trials", 1),
                          ("substitute_rounds", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{name} must be an integer >= {low}, got {value!r}.")
        if self.n_trials is not None and (not isinstance(self.n_trials, int) or self.n_trials < 2):
            problems.append(f"n_trials must be None or an integer >= 2, got {self.n_trials!r}.")
        if (not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
                                      for s in self.seeds)):
            problems.append(f"seeds must be a non-empty list of integers from 0 to 2**32 - 1, got {self.seeds!r}.")
        elif first_repeat(self.seeds) is not None:
            problems.append(f"seeds lists {first_repeat(self.seeds)} more than once; give each seed once.")
        if problems:
            raise ConfigError(" ".join(problems))

    # -- round trips -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field; ``arms`` only when it is not the default ("none",), so plans and stores written before arms
        existed keep their identity (`from_dict` reads a missing ``arms`` as ("none",))."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if d["arms"] == ["none"]:
            del d["arms"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SuiteConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            check_option("config key", unknown[0], known)
        return cls(**d)

    @classmethod
    def from_toml(cls, path) -> SuiteConfig:
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f))

    @classmethod
    def make(cls, value=None, **overrides) -> SuiteConfig:
        """Accept a SuiteConfig, a dict, a preset name or None (the "standard" preset), then apply overrides."""
        if value is None:
            value = "standard"
        if isinstance(value, str):
            check_option("preset", value, PRESETS)
            value = PRESETS[value]
        if isinstance(value, dict):
            value = cls.from_dict(value)
        if "epsilons" in overrides and "query_epsilons" not in overrides:
            overrides["query_epsilons"] = None  # budgets given: the query attacks run at those (not the preset's)
        return replace(value, **overrides) if overrides else value


PRESETS: dict[str, SuiteConfig] = {
    # a taste of each threat model on the same victims as "standard", under 2 minutes on a 2-core CPU including
    # training (victims trained for fewer epochs looked more robust than they are: EEGNet 0.18 at eps 0.3)
    "quick": SuiteConfig(
        white_box=("fgsm", "linf_pgd"), gray_box=("ufgsm",), black_box=("substitute",),
        epsilons=(0.05, 0.1, 0.3), n_trials=120, n_seed_trials=60, max_queries=100, pgd_steps=10,
        substitute_rounds=1, substitute_arch="eegnet",
    ),
    # the demo: the default grid, every threat model. Not in it, to keep it within minutes: APGD-CE (equal to PGD-20
    # at every budget on all three SCP1 victims, bench/whitebox.json, at 4x its cost), RayS, C&W and the universal
    # and band-limited attacks (all in the default SuiteConfig and in "paper"); transfer with 5 steps, as strong as
    # 40 (bench/attacks.json); a one-EEGNet black-box substitute (the ensemble, default and "paper", is stronger on
    # Deep4Net and ShallowFBCSPNet at 3x the cost, bench/substitute.json)
    "standard": SuiteConfig(white_box=("fgsm", "ufgsm", "linf_pgd", "deepfool"),
                            black_box=("substitute", "simba", "square", "hopskipjump"), max_queries=200,
                            query_epsilons=(0.1, 0.3), pgd_steps=20, transfer_steps=5, substitute_rounds=2,
                            substitute_arch="eegnet"),
    # what a paper needs: 3 seeds, 40-step PGD, L2 PGD and C&W, larger query budgets at every budget
    "paper": SuiteConfig(seeds=(0, 1, 2), max_queries=1000, substitute_rounds=4),
}


def attack_overrides(names) -> dict:
    """Split attack names (CLI ``--attacks``) into the suite's white-box, gray-box and black-box lists.

    A white-box name that is also a transfer base (fgsm, ufgsm, linf_pgd, l2_pgd) goes to both; names are checked
    with a "did you mean"; no name at all is an error (a gate that runs no attack must not pass).
    """
    names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if str(n).strip()]
    if not names:
        raise ConfigError("--attacks names no attack; give e.g. --attacks fgsm,linf_pgd (or leave it out for the "
                          "preset's attacks).")
    known = set(attack_names("white_box")) | set(TRANSFER_BASES) | set(BLACK_BOX_ATTACKS)
    for a in names:
        check_option("--attacks", a, known)
    return {"white_box": tuple(a for a in names if a in attack_names("white_box")),
            "gray_box": tuple(a for a in names if a in TRANSFER_BASES),
            "black_box": tuple(a for a in names if a in BLACK_BOX_ATTACKS)}
