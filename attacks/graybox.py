"""Gray-box attacks: the attacker has the victim's training data, not the victim.

The attacker trains a substitute of another architecture on that data, crafts adversarial trials on the
substitute with a white-box attack and sends them to the victim (transfer).

References
----------
.. [1] Zhang and Wu, "On the vulnerability of CNN classifiers in EEG-based BCIs", IEEE TNSRE 27(5), 2019.
.. [2] Papernot, McDaniel and Goodfellow, "Transferability in machine learning", arXiv:1605.07277, 2016.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ._params import ConfigTypeError
from .base import Attack, BudgetSpace, check_base, eval_mode, predict_labels


class TransferAttack(Attack):
    """Craft with ``base`` on ``surrogate`` and evaluate on the victim.

    Parameters
    ----------
    surrogate : torch.nn.Module
        The substitute model (maps microvolt EEG to logits, like the victim).
    base : Attack
        A white-box attack run on the surrogate (e.g. ``UFGSM()`` or ``LinfPGD()``).
    surrogate_name : str, default=""
        Label for reports (e.g. ``"deep4"``).

    Notes
    -----
    What is crafted depends on the surrogate, the trial and the budget, not on the victim, so each adversarial trial
    is kept (per epsilon, keyed by the trial's values): one ``TransferAttack`` reused for several victims crafts
    each trial once. Build a new one for a new seed.
    """

    threat_model = "gray_box"
    nested = False  # the attacker cannot see which trials fooled the victim

    def __init__(self, *, surrogate: nn.Module, base: Attack, surrogate_name: str = ""):
        if not isinstance(surrogate, nn.Module):
            raise TypeError(f"TransferAttack surrogate must be a torch.nn.Module, got {type(surrogate).__name__}.")
        if not isinstance(surrogate_name, str):
            raise ConfigTypeError(f"TransferAttack surrogate_name must be a str, got {type(surrogate_name).__name__}.")
        self.surrogate, self.base = surrogate, check_base("TransferAttack", base)
        self.surrogate_name = surrogate_name
        self._crafted: dict = {}

    @property
    def name(self):
        return f"transfer_{self.base.name}"

    @property
    def norm(self):
        return self.base.norm

    def __repr__(self):
        return f"{type(self).__name__}(base={self.base!r}, surrogate={self.surrogate_name or type(self.surrogate).__name__})"

    def _gradient_model(self, model):
        return self.surrogate  # the base attack follows the surrogate's gradients

    def _target(self, victim):
        return BudgetSpace(self.surrogate, victim.scale.flatten().cpu().numpy()).to(victim.scale.device)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        space = (float(epsilon), _digest(target.scale))
        keys = [(*space, _digest(row)) for row in S]
        new = [i for i, k in enumerate(keys) if k not in self._crafted]
        if new:
            idx = torch.as_tensor(new, device=S.device)
            with eval_mode(self.surrogate):
                own = predict_labels(target, S[idx])  # the attacker has no labels for the victim's trials
                crafted = self.base._craft(target, S[idx], own, epsilon=epsilon, bounds=bounds, rng=rng)
            for i, row in zip(new, crafted.detach()):
                self._crafted[keys[i]] = row
        return torch.stack([self._crafted[k] for k in keys])


def _digest(t: torch.Tensor) -> bytes:
    return hashlib.blake2b(t.detach().cpu().numpy().tobytes(), digest_size=16).digest()
