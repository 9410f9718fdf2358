"""Attack registry: names to classes, as foolbox's ``attacks`` namespace."""

from __future__ import annotations

from ..data._checks import check_option

from .apgd import APGDCE, APGDDLR, L2APGDCE, L2APGDDLR
from .autoattack import AutoAttack
from .bandlimit import BandPGD
from .blackbox import HopSkipJump, SquareAttack
from .substitute import JacobianSubstitute
from .fmn import FMN
from .graybox import TransferAttack
from .noise import RandomSignNoise
from .rays import RayS
from .simba import SimBA
from .universal import UniversalPerturbation
from .whitebox import FGSM, UFGSM, CarliniWagnerL2, DeepFool, L2PGD, LinfPGD

ATTACKS = {cls.name: cls for cls in (FGSM, UFGSM, LinfPGD, L2PGD, DeepFool, CarliniWagnerL2, APGDCE, APGDDLR,
                                     L2APGDCE, L2APGDDLR, AutoAttack, BandPGD, UniversalPerturbation, RandomSignNoise, SquareAttack,
                                     HopSkipJump, FMN, SimBA, RayS)}
#: Attacks that wrap a white-box attack: transfer from a surrogate (gray-box) or from a Jacobian substitute.
WRAPPERS = {"gray_box": TransferAttack, "black_box": JacobianSubstitute}


def attack_names(threat_model: str | None = None) -> list[str]:
    """Names of the registered attacks, optionally of one threat model."""
    return sorted(n for n, c in ATTACKS.items() if threat_model is None or c.threat_model == threat_model)


def make_attack(name: str, **params):
    """Build the attack registered as ``name`` with keyword ``params``."""
    check_option("attack", name, ATTACKS)
    return ATTACKS[name](**params)
