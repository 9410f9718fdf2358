"""Auto-PGD (APGD) with cross-entropy and DLR losses, L-inf and L2, with Expectation over Transformation (EOT).

APGD [1]_ is PGD without a step size to tune: it starts at twice the budget, adds momentum, and halves the step
at checkpoints (about 22 %, 41 %, 57 % ... of the iterations) wherever the loss stopped improving, restarting from
the best point found. Written here with ``torch.autograd.grad`` on the victim in budget space, following the
published schedule: 100 iterations, rho 0.75, momentum 0.75.

Losses: cross-entropy (``apgd_ce``) and the Difference of Logits Ratio (``apgd_dlr``), which is invariant to the
scale of the logits and so defeats defences that merely saturate the softmax. DLR divides by ``z_pi1 - z_pi3``
(the largest minus the third-largest logit) and needs >= 3 classes, its targeted form >= 4; most BCIs have two
classes, where the denominator is undefined, so ``variant="auto"`` uses the targeted DLR for >= 4 classes, the
untargeted one for 3, and the Carlini-Wagner margin ``max_{j != y} z_j - z_y`` for 2 (said in every output's
``info["loss"]``).

L2 (``l2_apgd_ce``, ``l2_apgd_dlr``): the same schedule along the L2-normalised gradient, projected onto the L2 ball
whose radius matches the L-inf epsilon in energy (`attacks.budget.l2_budget`), as in the paper's L2 version.

EOT [2]_: with ``eot_iter`` >= 2 every gradient (and the loss that drives the step-size schedule) is averaged
over that many forward passes, and a trial counts as fooled when the averaged logits are wrong; this is how
models whose outputs are random at evaluation time (randomised defences) must be attacked. Attacks with
``eot_iter`` >= 2 accept such models; the others refuse them.

References
----------
.. [1] Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
       attacks", ICML 2020.
.. [2] Athalye, Carlini and Wagner, "Obfuscated gradients give a false sense of security", ICML 2018.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data._checks import ConfigError, check_option
from ._params import check_bool, check_int, check_real
from .base import Attack, margin_terms, revive_gradient

LOSSES = ("ce", "dlr", "targeted", "margin")
VARIANTS = ("auto", "dlr", "targeted", "margin")
_MIN_CLASSES = {"dlr": 3, "targeted": 4, "margin": 2, "ce": 2}


def checkpoints(steps: int) -> list[int]:
    """Iterations at which APGD may halve its step: ``ceil(p_j * steps)`` for the paper's p_j (0.22, 0.41, ...)."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(q * steps, 6)) for q in p[1:] if q <= 1 + 1e-9})


def loss_per_trial(z: torch.Tensor, y: torch.Tensor, kind: str, target=None) -> torch.Tensor:
    """Per-trial loss APGD ascends: "ce", "dlr", "targeted" (DLR towards ``target``) or "margin"."""
    if kind == "ce":
        return nn.functional.cross_entropy(z, y, reduction="none")
    z_y, z_other = margin_terms(z, y)
    if kind == "margin":
        return z_other - z_y
    top = z.sort(1, descending=True).values
    if kind == "dlr":
        return -(z_y - z_other) / (top[:, 0] - top[:, 2] + 1e-12)
    z_t = z.gather(1, target[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


class _APGD(Attack):
    """Shared APGD loop; subclasses set the loss."""

    norm = "linf"
    loss = "ce"

    def __init__(self, *, steps=100, restarts=1, rho=0.75, momentum=0.75, eot_iter=1, random_start=True):
        owner = type(self).__name__
        self.steps = check_int(owner, "steps", steps)
        self.restarts = check_int(owner, "restarts", restarts)
        self.rho = check_real(owner, "rho", rho, high=1.0)
        self.momentum = check_real(owner, "momentum", momentum, high=1.0)
        self.eot_iter = check_int(owner, "eot_iter", eot_iter,
                                  why=" (forward passes averaged per gradient; 1 for a deterministic model)")
        self.random_start = check_bool(owner, "random_start", random_start)

    # -- what the loss sees ----------------------------------------------------------------------------------
    def _loss_kind(self, n_classes: int) -> str:
        return self.loss

    def _targets(self, target, S, labels, kind):
        """Per-trial target classes of a targeted loss, one list per target rank (untargeted: ``[None]``)."""
        return [None]

    def _eval(self, target, x, y, kind, t, grad=True):
        """EOT-averaged loss, gradient and logits at ``x``."""
        loss_sum, grad_sum, z_sum = 0.0, 0.0, 0.0
        for _ in range(self.eot_iter):
            with torch.enable_grad() if grad else torch.no_grad():
                x_ = x.detach().requires_grad_(grad)
                z = target(x_)
                loss = loss_per_trial(z, y, kind, t)
                if grad:
                    (g,) = torch.autograd.grad(loss.sum(), x_)
                    if kind == "ce":  # saturated cross-entropy: the margin's gradient where it is exactly 0
                        g = revive_gradient(target, x_, y, g)
                    grad_sum = grad_sum + g
            loss_sum, z_sum = loss_sum + loss.detach(), z_sum + z.detach()
        k = self.eot_iter
        return loss_sum / k, (grad_sum / k if grad else None), z_sum / k

    # -- the attack ------------------------------------------------------------------------------------------
    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        n_classes = target(S[:1]).shape[1]
        kind = self._loss_kind(n_classes)
        best = S.clone()
        found = torch.zeros(len(S), dtype=torch.bool, device=S.device)
        for t in self._targets(target, S, labels, kind):
            for _ in range(self.restarts):
                todo = (~found).nonzero().flatten()
                if len(todo) == 0:
                    return best
                x_adv, ok = self._apgd(target, S[todo], labels[todo], None if t is None else t[todo], kind,
                                       epsilon, bounds, rng)
                best[todo] = x_adv
                found[todo] = ok
        return best

    # -- the norm's geometry (budget space; ``eps`` is the ball's radius there, `Attack._budget`) ------------------
    def _clip(self, S, X, eps, bounds):
        """Onto the ball of radius ``eps`` around ``S`` and into the bounds."""
        if self.norm == "linf":
            return torch.min(torch.max(X, S - eps), S + eps).clamp(bounds.low, bounds.high)
        D = X - S
        n = D.reshape(len(D), -1).norm(dim=1).clamp_min(1e-12)
        return (S + D * (eps / n).clamp(max=1.0)[:, None, None]).clamp(bounds.low, bounds.high)

    def _direction(self, g):
        """The unit step of the norm: the gradient's sign (L-inf) or the gradient scaled to L2 norm 1."""
        if self.norm == "linf":
            return g.sign()
        return g / g.reshape(len(g), -1).norm(dim=1).clamp_min(1e-12)[:, None, None]

    def _start(self, S, eps, bounds, rng):
        """A random point on the ball's surface: uniform noise scaled to L-inf norm ``eps``, or Gaussian noise
        scaled to L2 norm ``eps`` (as AutoAttack), then into the bounds."""
        if self.norm == "linf":
            r = torch.from_numpy(rng.uniform(-1.0, 1.0, size=tuple(S.shape)).astype("float32")).to(S.device)
            return self._clip(S, S + eps * r / r.reshape(len(S), -1).abs().amax(1).clamp_min(1e-12)[:, None, None],
                              eps, bounds)
        r = torch.from_numpy(rng.standard_normal(size=tuple(S.shape)).astype("float32")).to(S.device)
        return self._clip(S, S + eps * self._direction(r), eps, bounds)

    def _apgd(self, target, S, y, t, kind, eps, bounds, rng):
        """One APGD run; returns (adversarial or highest-loss points, fooled mask)."""
        n, dev = len(S), S.device
        eps = self._budget(eps, S.shape)  # the radius in budget space (L2: `budget.l2_budget`)
        x = self._start(S, eps, bounds, rng) if self.random_start else S.clone()
        loss, g, z = self._eval(target, x, y, kind, t)
        fooled = z.argmax(1) != y
        out = x.clone()
        x_best, loss_best, g_best = x.clone(), loss.clone(), g.clone()
        step = torch.full((n,), 2.0 * eps, device=dev)
        x_prev = x.clone()
        marks = set(checkpoints(self.steps))
        last_mark, n_up = 0, torch.zeros(n, device=dev)
        loss_best_mark, step_reduced_last = loss_best.clone(), torch.ones(n, dtype=torch.bool, device=dev)
        loss_prev = loss.clone()
        a = self.momentum
        for k in range(self.steps):
            act = (~fooled).nonzero().flatten()
            if len(act) == 0:
                break
            full = len(act) == n  # every trial still active (no trial fooled yet): no gathers and scatters
            if full:
                xs, xp, s, Sa, ga, ya, ta = x, x_prev, step[:, None, None], S, g, y, t
            else:
                xs, xp, s, Sa, ga, ya = x[act], x_prev[act], step[act][:, None, None], S[act], g[act], y[act]
                ta = None if t is None else t[act]
            z_step = self._clip(Sa, xs + s * self._direction(ga), eps, bounds)
            x_new = z_step if k == 0 else self._clip(Sa, xs + a * (z_step - xs) + (1 - a) * (xs - xp), eps, bounds)
            loss_new, g_new, z_new = self._eval(target, x_new, ya, kind, ta)
            if full:  # the same values as the scatters below, without copying every trial
                x_prev, x, g = xs, x_new, g_new
            else:
                x_prev[act], x[act], g[act] = xs, x_new, g_new
            hit = z_new.argmax(1) != ya
            out[act[hit]] = x_new[hit]
            fooled[act[hit]] = True
            n_up[act] += (loss_new > loss_prev[act]).float()
            loss_prev[act] = loss_new
            better = loss_new > loss_best[act]
            i = act[better]
            x_best[i], loss_best[i], g_best[i] = x_new[better], loss_new[better], g_new[better]
            if k + 1 in marks:
                h = k + 1 - last_mark
                reduce = (n_up < self.rho * h) | (~step_reduced_last & (loss_best_mark >= loss_best))
                step = torch.where(reduce, step / 2, step)
                x = torch.where(reduce[:, None, None], x_best, x)
                x_prev = torch.where(reduce[:, None, None], x_best, x_prev)
                g = torch.where(reduce[:, None, None], g_best, g)
                step_reduced_last, loss_best_mark = reduce, loss_best.clone()
                n_up.zero_()
                last_mark = k + 1
        out = torch.where(fooled[:, None, None], out, x_best)
        return out, fooled

    def _info(self):
        return {"loss": getattr(self, "_kind", self.loss), "eot_iter": self.eot_iter}


class APGDCE(_APGD):
    """APGD on the cross-entropy loss [1]_ (L-inf).

    Parameters
    ----------
    steps : int >= 1, default=100
        Iterations (the paper's 100; the step-size checkpoints scale with it).
    restarts : int >= 1, default=1
        Random restarts; later restarts run only on the trials not yet fooled.
    rho : float in (0, 1], default=0.75
        Halve the step at a checkpoint unless the loss rose in at least this fraction of the steps since the last.
    momentum : float in (0, 1], default=0.75
        Weight of the new gradient step (1: no momentum).
    eot_iter : int >= 1, default=1
        Forward passes averaged per gradient (Expectation over Transformation); >= 2 for randomised models.
    random_start : bool, default=True
    """

    name = "apgd_ce"


class APGDDLR(_APGD):
    """APGD on the Difference of Logits Ratio loss [1]_ (L-inf); see the module docstring for the variants.

    Parameters
    ----------
    variant : {"auto", "dlr", "targeted", "margin"}, default="auto"
        "dlr" (untargeted, >= 3 classes), "targeted" (the targeted DLR of AutoAttack's APGD-T towards each of the
        ``n_target_classes`` most likely wrong classes, >= 4 classes), "margin" (Carlini-Wagner margin, any number
        of classes), "auto" (targeted for >= 4 classes, dlr for 3, margin for 2).
    n_target_classes : int >= 1, default=9
        Targeted variant: how many target classes are tried in turn (AutoAttack's 9), on the trials not yet fooled.
    steps, restarts, rho, momentum, eot_iter, random_start
        As `APGDCE`.
    """

    name = "apgd_dlr"

    def __init__(self, *, variant="auto", n_target_classes=9, **kw):
        super().__init__(**kw)
        owner = type(self).__name__
        self.variant = check_option(f"{owner} variant", variant, VARIANTS)
        self.n_target_classes = check_int(owner, "n_target_classes", n_target_classes)

    def _loss_kind(self, n_classes):
        if self.variant == "auto":
            kind = "targeted" if n_classes >= 4 else "dlr" if n_classes == 3 else "margin"
        else:
            kind = self.variant
        if n_classes < _MIN_CLASSES[kind]:
            use = "'margin' (or 'auto')" if n_classes == 2 else "'dlr', 'margin' or 'auto'"
            raise ConfigError(f"{self.name} variant={kind!r} needs >= {_MIN_CLASSES[kind]} classes (its denominator "
                              f"uses the {'third' if kind == 'dlr' else 'fourth'}-largest logit), got a model with "
                              f"{n_classes}: use variant={use}.")
        self._kind = kind
        return kind

    def _targets(self, target, S, labels, kind):
        if kind != "targeted":
            return [None]
        with torch.no_grad():
            z = torch.cat([target(S[i:i + 512]) for i in range(0, len(S), 512)])
        order = z.scatter(1, labels[:, None], float("-inf")).argsort(1, descending=True)
        n = min(self.n_target_classes, z.shape[1] - 1)
        return [order[:, r] for r in range(n)]


class L2APGDCE(APGDCE):
    """APGD on the cross-entropy loss [1]_, L2: steps along the L2-normalised gradient (first step twice the
    radius), random start on the L2 sphere, projection onto the L2 ball; the radius is the L-inf epsilon matched in
    energy (`attacks.budget.l2_budget`). Parameters as `APGDCE`."""

    name = "l2_apgd_ce"
    norm = "l2"


class L2APGDDLR(APGDDLR):
    """APGD on the DLR loss [1]_ (its variants as `APGDDLR`), L2 as `L2APGDCE`. Parameters as `APGDDLR`."""

    name = "l2_apgd_dlr"
    norm = "l2"
