"""Run foolbox attacks in unit space, the only space all of foolbox 3.3.4 handles correctly.

foolbox's decision-based attacks clip to [0, 1] and its C&W / DeepFool defaults assume [0, 1] inputs, so
budget-space trials are mapped affinely onto [0, 1] (`attacks.budget.Bounds`) and epsilons are divided by the
box's span. Importing foolbox needs ``GIT_PYTHON_REFRESH=quiet`` on machines without git.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from .budget import Bounds

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
import foolbox as fb  # noqa: E402


class UnitSpace(nn.Module):
    """Feed a budget-space module ``u * span + low``."""

    def __init__(self, module: nn.Module, bounds: Bounds):
        super().__init__()
        self.module = module
        self.low, self.span = bounds.low, bounds.span

    def forward(self, u):
        return self.module(u * self.span + self.low)


def run_foolbox(attack, module: nn.Module, S: torch.Tensor, labels: torch.Tensor, *, budget, bounds: Bounds,
                **run_kwargs) -> torch.Tensor:
    """Run ``attack`` on a budget-space ``module``; ``budget`` is in budget space (None: minimal-norm)."""
    unit = UnitSpace(module, bounds).eval()
    fmodel = fb.PyTorchModel(unit, bounds=(0.0, 1.0), device=S.device)
    U = ((S - bounds.low) / bounds.span).clamp(0.0, 1.0)
    epsilon = None if budget is None else budget / bounds.span
    if run_kwargs:  # starting points etc.: call run() directly, as foolbox's __call__ does not forward them
        criterion = fb.criteria.Misclassification(labels)
        U_adv = attack.run(fmodel, U, criterion, **run_kwargs)
    else:
        _, U_adv, _ = attack(fmodel, U, labels, epsilons=epsilon)
    return U_adv * bounds.span + bounds.low
