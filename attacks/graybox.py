"""Gray-box attacks: the attacker has the victim's training data, not the victim.

The attacker trains a substitute of another architecture on that data, crafts adversarial trials on the
substitute with a white-box attack and sends them to the victim (transfer).

References
----------
.. [1] Zhang and Wu, "On the vulnerability of CNN classifiers in EEG-based BCIs", IEEE TNSRE 27(5), 2019.
.. [2] Papernot, McDaniel and Goodfellow, "Transferability in machine learning", arXiv:1605.07277, 2016.
"""

from __future__ import annotations

from torch import nn

from .base import Attack, BudgetSpace, eval_mode, predict_labels


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
    """

    threat_model = "gray_box"
    nested = False  # the attacker cannot see which trials fooled the victim

    def __init__(self, *, surrogate: nn.Module, base: Attack, surrogate_name: str = ""):
        if not isinstance(surrogate, nn.Module):
            raise TypeError(f"surrogate must be a torch.nn.Module, got {type(surrogate).__name__}.")
        self.surrogate, self.base, self.surrogate_name = surrogate, base, surrogate_name

    @property
    def name(self):
        return f"transfer_{self.base.name}"

    @property
    def norm(self):
        return self.base.norm

    def __repr__(self):
        return f"{type(self).__name__}(base={self.base!r}, surrogate={self.surrogate_name or type(self.surrogate).__name__})"

    def _target(self, victim):
        return BudgetSpace(self.surrogate, victim.scale.flatten().cpu().numpy()).to(victim.scale.device)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        with eval_mode(self.surrogate):
            labels = predict_labels(target, S)  # the attacker has no labels for the victim's trials
            return self.base._run(target, S, labels, epsilon=epsilon, bounds=bounds, rng=rng)
