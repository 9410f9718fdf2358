"""Perturbations and threat models: white-box, gray-box (transfer), black-box (queries) and a noise control."""

from .base import THREAT_MODELS, Attack, AttackOutput, BudgetSpace, ModelOutputError
from .blackbox import HopSkipJump, JacobianSubstitute, QueryBudgetExceeded, QueryOracle, SquareAttack
from .budget import DEFAULT_EPSILONS, channel_scale, check_epsilons, l2_norms, linf_norms, snr_db
from .graybox import TransferAttack
from .noise import RandomSignNoise
from .registry import ATTACKS, attack_names, make_attack
from .whitebox import FGSM, UFGSM, CarliniWagnerL2, DeepFool, L2PGD, LinfPGD

__all__ = [
    "ATTACKS", "Attack", "AttackOutput", "BudgetSpace", "CarliniWagnerL2", "DEFAULT_EPSILONS", "DeepFool", "FGSM",
    "HopSkipJump", "JacobianSubstitute", "L2PGD", "LinfPGD", "ModelOutputError", "QueryBudgetExceeded", "QueryOracle",
    "RandomSignNoise", "SquareAttack", "THREAT_MODELS", "TransferAttack", "UFGSM", "attack_names", "channel_scale",
    "check_epsilons", "l2_norms", "linf_norms", "make_attack", "snr_db",
]
