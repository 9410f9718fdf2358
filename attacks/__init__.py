"""Perturbations and threat models: white-box, gray-box (transfer), black-box (queries) and a noise control."""

from .apgd import APGDCE, APGDDLR
from .autoattack import AutoAttack
from .bandlimit import BandPGD, band_project
from .base import THREAT_MODELS, Attack, AttackOutput, BudgetSpace, ModelOutputError
from .blackbox import HopSkipJump, SquareAttack
from .budget import (BANDS, DEFAULT_EPSILONS, band_snr_db, channel_scale, check_epsilons, demean, l2_norms, linf_norms,
                     pooled_snr_db, snr_db)
from .fmn import FMN
from .graybox import TransferAttack
from .noise import RandomSignNoise
from .oracle import QueryBudgetExceeded, QueryOracle
from .rays import RayS
from .registry import ATTACKS, attack_names, make_attack
from .simba import SimBA
from .substitute import JacobianSubstitute, SubstituteEnsemble
from .universal import UniversalPerturbation
from .whitebox import FGSM, UFGSM, CarliniWagnerL2, DeepFool, L2PGD, LinfPGD

__all__ = [
    "APGDCE", "APGDDLR", "ATTACKS", "AutoAttack", "Attack", "AttackOutput", "BANDS", "BandPGD", "BudgetSpace",
    "CarliniWagnerL2", "DEFAULT_EPSILONS", "DeepFool", "FGSM", "FMN", "HopSkipJump", "JacobianSubstitute", "L2PGD",
    "LinfPGD", "ModelOutputError", "QueryBudgetExceeded", "QueryOracle", "RandomSignNoise", "RayS", "SimBA",
    "SquareAttack", "SubstituteEnsemble", "THREAT_MODELS", "TransferAttack", "UFGSM", "UniversalPerturbation",
    "attack_names", "band_project", "band_snr_db", "channel_scale", "check_epsilons", "demean", "l2_norms",
    "linf_norms", "make_attack", "pooled_snr_db", "snr_db",
]
