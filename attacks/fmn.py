"""Fast Minimum-Norm (FMN) attack, L-inf [1]_: the smallest perturbation that flips each trial, in one run.

FMN minimises the logit margin ``z_y - max_{j != y} z_j`` by projected gradient steps inside an L-inf ball whose
radius ``epsilon_k`` adapts per trial: it shrinks by ``(1 - gamma_k)`` while the iterate is adversarial and grows
by ``(1 + gamma_k)`` while it is not (before any adversarial point is found it jumps to the linear estimate of the
boundary, ``||delta||_inf + margin / ||grad||_1``). The smallest adversarial perturbation seen is kept per trial;
the template then reports, at every epsilon, the trials whose minimal norm fits, so one run gives the whole
accuracy-vs-epsilon curve. Written directly in torch (`torch.autograd.grad`), in budget space.

Choices (documented deviations or details the paper leaves to the implementation):

- Direction: ``-sign(grad)``, the steepest-descent direction of the margin for the L-inf norm.
- Step size: ``alpha_k * epsilon_k`` per sample, relative to the current radius rather than an absolute step tuned
  for images in [0, 1], so it needs no knowledge of the data's range; ``alpha_k`` and ``gamma_k`` follow a cosine
  from their initial values to 1/100 of them. ``alpha_init=1`` makes the first step the exact minimal
  perturbation of the linearised model.
- While an adversarial point is known, the radius never exceeds its norm (growing past it cannot help).
- Adversarial means ``margin < -tol``, ``tol = 1e-3 |clean margin|`` (at least ``1e-5`` of the largest clean logit):
  points found exactly on the boundary flipped back after the float32 round trip to microvolts (seen on the
  toy victim). On a locally linear model this costs about 0.1 % of the norm.
- Restarts: the first run starts from the clean trial, as in the paper. Each further run (``restarts > 1``)
  starts at a uniform random point of the ball of the best norm found so far (of the radius reached, for trials
  not yet fooled) and keeps the smaller adversarial; only then does ``random_state`` matter.

References
----------
.. [1] Pintor, Roli, Brendel and Biggio, "Fast minimum-norm adversarial attacks through adaptive norm
   constraints", NeurIPS 2021.
"""

from __future__ import annotations

import math

import torch

from ._params import check_int, check_real
from .base import Attack


def logit_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{j != y} z_j`` per trial: negative exactly where the trial is misclassified."""
    true = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], -math.inf).amax(1)
    return true - other


class FMN(Attack):
    """L-inf Fast Minimum-Norm attack [1]_, minimal-norm: the smallest budget-space L-inf norm flipping each trial.

    Parameters
    ----------
    steps : int >= 1, default=100
        Gradient steps per run.
    alpha_init : float in (0, 2], default=1.0
        First step size, relative to the current radius (the step is ``alpha_k * epsilon_k`` per sample),
        annealed by cosine to ``alpha_init / 100``.
    gamma_init : float in (0, 1), default=0.05
        First relative change of the radius per step, annealed by cosine to ``gamma_init / 100``: it bounds the
        precision of the minimal norm found late in the run.
    restarts : int >= 1, default=1
        Runs; the first starts at the clean trial, the others at random points (see the module docstring).

    Notes
    -----
    Trials never fooled are returned clean, and the template gives them an infinite ``min_norm``. Trials already
    misclassified get norm 0.
    """

    name = "fmn"
    norm = "linf"
    minimal = True
    final_ratio = 0.01  # alpha_k and gamma_k end at this fraction of their initial values
    chunk = 512  # trials per forward/backward pass

    def __init__(self, *, steps=100, alpha_init=1.0, gamma_init=0.05, restarts=1):
        owner = type(self).__name__
        self.steps = check_int(owner, "steps", steps)
        self.alpha_init = check_real(owner, "alpha_init", alpha_init, high=2.0)
        self.gamma_init = check_real(owner, "gamma_init", gamma_init, high=1.0, high_open=True)
        self.restarts = check_int(owner, "restarts", restarts)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        best = torch.zeros_like(S)
        best_norm = torch.full((len(S),), math.inf, device=S.device)
        reach = torch.zeros(len(S), device=S.device)  # largest radius each trial reached (for random restarts)
        for r in range(self.restarts):
            if r == 0:
                delta0 = torch.zeros_like(S)
            else:
                rho = torch.where(torch.isfinite(best_norm), best_norm, reach)
                u = torch.from_numpy(rng.uniform(-1.0, 1.0, size=tuple(S.shape))).to(S)
                delta0 = u * rho[:, None, None]
            for i in range(0, len(S), self.chunk):
                sl = slice(i, i + self.chunk)
                self._descend(target, S[sl], labels[sl], delta0[sl], bounds, best[sl], best_norm[sl], reach[sl])
        return S + best

    def _descend(self, target, S, labels, delta, bounds, best, best_norm, reach):
        """One FMN run on a chunk; updates ``best`` / ``best_norm`` / ``reach`` (views) in place."""
        with torch.no_grad():
            logits = target(S)
            tol = torch.maximum(1e-3 * logit_margin(logits, labels).abs(), 1e-5 * logits.abs().amax(1))
        delta = delta.clone()
        eps = delta.abs().amax((1, 2))
        low, high = bounds.low, bounds.high
        for k in range(self.steps + 1):
            with torch.enable_grad():
                delta.requires_grad_(k < self.steps)
                margin = logit_margin(target(S + delta), labels) + tol
                grad = torch.autograd.grad(margin.sum(), delta)[0] if k < self.steps else None
            with torch.no_grad():
                delta, margin = delta.detach(), margin.detach()
                norm = delta.abs().amax((1, 2))
                adv = margin < 0
                better = adv & (norm < best_norm)
                best[better], best_norm[better] = delta[better], norm[better]
                if k == self.steps:  # the last iterate is checked, not moved
                    break
                cos = 0.5 * (1 + math.cos(math.pi * k / self.steps))
                alpha = self.alpha_init * (self.final_ratio + (1 - self.final_ratio) * cos)
                gamma = self.gamma_init * (self.final_ratio + (1 - self.final_ratio) * cos)
                found = torch.isfinite(best_norm)
                boundary = norm + margin.clamp_min(0) / grad.abs().sum((1, 2)).clamp_min(1e-12)
                grown = torch.where(found, eps * (1 + gamma), boundary)
                eps = torch.where(adv, torch.minimum(eps, norm) * (1 - gamma), grown)
                eps = torch.minimum(eps, best_norm).clamp(max=bounds.span)
                reach.copy_(torch.maximum(reach, eps))
                delta = delta - (alpha * eps)[:, None, None] * grad.sign()
                delta = torch.maximum(torch.minimum(delta, eps[:, None, None]), -eps[:, None, None])
                delta = (S + delta).clamp(low, high) - S
