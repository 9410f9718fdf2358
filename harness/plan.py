"""The plan of a study: frozen, hashable cells, each a victim x attack x seed on one fold, planned before anything runs.

A cell carries configurations and identities (hashes), never model objects or arrays, so it can be written to
disk, sent to a worker, and recognised again: its `Cell.digest` names the cell's file in the store, and covers the
data (train and test hashes), the victim (its cache key, or the weights' hash of a model given by the user) and
the attack with its parameters and budgets. A resumed study skips the cells whose digest is already stored; a cell
of another model or other data has another digest and can never be mixed in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from .config import SCORE_ATTACKS, SuiteConfig

#: Attacks whose strength is set by the number of PGD steps of the suite.
_PGD = ("linf_pgd", "l2_pgd")
#: Query-based black-box attacks and their classes' registry names.
QUERY_ATTACKS = ("simba", "square", "rays", "hopskipjump")


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest_of(value) -> str:
    """SHA-256 (hex, first 20 characters) of a JSON-able value in canonical form."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class AttackSpec:
    """One attack as a study runs it: threat model, registry name, parameters, budgets.

    Parameters
    ----------
    threat_model : {"white_box", "gray_box", "black_box", "control"}
    attack : str
        Registry name (`attacks.attack_names`), or "substitute" for the black-box Jacobian substitute.
    params : tuple of (str, value) pairs
        Keyword parameters of the attack (sorted), e.g. ``(("steps", 20),)``.
    substitute : str, default=""
        Gray-box: the architecture of the substitute the attack is crafted on; black-box "substitute": the
        architecture of the Jacobian-augmented substitute.
    epsilons : tuple of float
        Budgets, 0 first (the clean reference).
    all_trials : bool, default=False
        Attack every trial (the noise control), not only the correctly classified ones.
    """

    threat_model: str
    attack: str
    params: tuple = ()
    substitute: str = ""
    epsilons: tuple = (0.0,)
    all_trials: bool = False

    @property
    def kwargs(self) -> dict:
        return dict(self.params)

    @property
    def label(self) -> str:
        return f"{self.threat_model}/{self.attack}" + (f"<-{self.substitute}" if self.substitute else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["params"] = [list(p) for p in self.params]
        d["epsilons"] = list(self.epsilons)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AttackSpec":
        return cls(d["threat_model"], d["attack"], tuple(tuple(p) for p in d.get("params", ())),
                   d.get("substitute", ""), tuple(d["epsilons"]), bool(d.get("all_trials", False)))


def _with_zero(epsilons) -> tuple:
    return (0.0,) + tuple(float(e) for e in epsilons if e != 0)


def attack_specs(config: SuiteConfig, victim_arch: str, *, substitutes=(), has_gradients: bool = True) -> list:
    """Every attack ``config`` runs on a victim of architecture ``victim_arch``, in execution order.

    This is the one place where a suite's flat knobs (``pgd_steps``, ``max_queries``, ``transfer_steps`` ...)
    become attack parameters. ``substitutes`` are the architectures available as gray-box substitutes (those of
    the victim's own architecture are left out: gray-box transfers from *other* architectures).
    """
    threats, eps = config.threat_models, _with_zero(config.epsilons)
    specs = []
    if "white_box" in threats and has_gradients:
        for name in config.white_box:
            params = (("steps", config.pgd_steps),) if name in _PGD else ()
            specs.append(AttackSpec("white_box", name, params, "", eps))
    if "control" in threats:
        specs.append(AttackSpec("control", "noise", (), "", eps, all_trials=True))
    if "black_box" in threats:
        for name in config.black_box:
            if name == "substitute":
                params = (("arch", config.substitute_arch), ("base", config.substitute_attack),
                          ("base_steps", config.transfer_steps), ("rounds", config.substitute_rounds))
                specs.append(AttackSpec("black_box", "substitute", params, config.substitute_arch, eps))
            else:
                score = name in SCORE_ATTACKS  # minimal-norm ones (rays, hopskipjump) give every budget at once
                q_eps = _with_zero(config.query_epsilons) if (score and config.query_epsilons) else eps
                specs.append(AttackSpec("black_box", name, (("max_queries", config.max_queries),), "", q_eps))
    if "gray_box" in threats:
        for sub in substitutes:
            if sub == victim_arch:
                continue
            for base in config.gray_box:
                params = (("steps", config.transfer_steps),) if base in _PGD else ()
                specs.append(AttackSpec("gray_box", base, params, sub, eps))
    return specs


@dataclass(frozen=True)
class Cell:
    """One unit of work and of storage: a victim on one fold under one attack with one seed (all budgets).

    Parameters
    ----------
    dataset, subject, session, fold, protocol : str
        Where the trials come from (`data.protocols`).
    model : str
        Display name of the victim (its architecture, or the name a user gave a model).
    arch : str
        Architecture (registry name), or "" for a model given by the user whose architecture is unknown.
    arm : str
        Training-time arm ("none"; augmentation and defences are arms).
    train_seed : int or None
        Seed the victim was trained with (None for a model given by the user).
    attack : AttackSpec
    attack_seed : int
    victim_id : str
        Victim identity: its cache key (trained victims) or the SHA-256 of its weights (given models).
    train_hash, test_hash : str
        `EEGData.data_hash` of the training trials ("" if none) and of the evaluation trials.
    budget_unit : str
        "rel" (per-channel std of the evaluation data) or "uV".
    train_config : str
        Digest of the training configuration of victims and substitutes (a given model's gray-box substitutes
        are trained with it, so it is part of what a cell measured).
    device : str
        Where it runs; not part of the digest (a cell's numbers do not depend on it beyond float noise).
    """

    dataset: str
    subject: str
    session: str
    fold: str
    protocol: str
    model: str
    arch: str
    arm: str
    train_seed: int | None
    attack: AttackSpec
    attack_seed: int
    victim_id: str
    train_hash: str
    test_hash: str
    budget_unit: str = "rel"
    train_config: str = ""
    n_trials: int | None = None
    n_seed_trials: int = 0
    device: str = field(default="cpu", compare=False)

    def identity(self) -> dict:
        d = asdict(self)
        d["attack"] = self.attack.to_dict()
        d.pop("device")
        return d

    @property
    def digest(self) -> str:
        return digest_of(self.identity())

    def to_dict(self) -> dict:
        return {**self.identity(), "device": self.device, "digest": self.digest}

    @classmethod
    def from_dict(cls, d: dict) -> "Cell":
        d = {k: v for k, v in d.items() if k != "digest"}
        d["attack"] = AttackSpec.from_dict(d["attack"])
        return cls(**d)

    def describe(self) -> str:
        return (f"{self.model} [{self.subject}/{self.fold}] {self.attack.label} seed {self.attack_seed}")


def differences(stored: Cell, planned: Cell) -> list:
    """Field names in which two cells differ (to say why a stored cell does not belong to this study)."""
    a, b = stored.identity(), planned.identity()
    return [k for k in a if a[k] != b.get(k)]


def check_attacks_planned(cells, *, skipped=()) -> None:
    """Fail closed: raise NoVerdictError when a plan holds no attack (only the noise control, or nothing).

    A CI gate over a study that attacked nothing must not pass: ``--eps 0``, ``--threat gray`` without training
    data, an ONNX model with ``--threat white``, ``--threat black --attacks fgsm`` all end here.
    """
    from ..data._checks import NoVerdictError

    attacked = [c for c in cells if c.attack.threat_model != "control" and any(e > 0 for e in c.attack.epsilons)]
    if not attacked:
        why = "; ".join(skipped) if skipped else "no attack of the chosen threat models at a budget > 0"
        raise NoVerdictError(f"nothing to attack ({why}); choose attacks of the chosen threat models (--threat, "
                          "--attacks) and budgets > 0 (--eps).")
