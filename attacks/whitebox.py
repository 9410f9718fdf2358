"""White-box attacks: the attacker has the victim's architecture and weights (gradients).

References
----------
.. [1] Goodfellow, Shlens and Szegedy, "Explaining and harnessing adversarial examples", ICLR 2015 (FGSM).
.. [2] Zhang and Wu, "On the vulnerability of CNN classifiers in EEG-based BCIs", IEEE TNSRE 27(5), 2019 (UFGSM).
.. [3] Madry et al., "Towards deep learning models resistant to adversarial attacks", ICLR 2018 (PGD).
.. [4] Moosavi-Dezfooli, Fawzi and Frossard, "DeepFool", CVPR 2016.
.. [5] Carlini and Wagner, "Towards evaluating the robustness of neural networks", IEEE S&P 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from ._foolbox import fb, run_foolbox
from ._params import check_bool, check_int, check_real
from .base import Attack, predict_labels, revive_gradient


class FGSM(Attack):
    """Fast gradient sign method: one step of size epsilon along the sign of the loss gradient [1]_.

    Not nested: every budget is one fresh step from the clean trial, so each output is the FGSM perturbation of
    that size (and its SNR is that of the budget); the per-trial worst case over attacks is monotone anyway. The
    gradient at the clean trials does not depend on epsilon, so it is computed once for all budgets of a call (one
    backward pass instead of one per budget; the step then is ``clip(S + eps * sign(grad))``, as foolbox's FGSM).
    """

    name = "fgsm"
    nested = False

    def _labels(self, target, S, labels):
        return labels

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        labels = self._labels(target, S, labels)
        cached = getattr(self, "_sign_cache", None)
        if (cached is None or cached[0] is not target or cached[1].shape != S.shape or not torch.equal(cached[1], S)
                or not torch.equal(cached[2], labels)):
            x = S.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                loss = nn.functional.cross_entropy(target(x), labels, reduction="sum")
                (grad,) = torch.autograd.grad(loss, x)
            grad = revive_gradient(target, S, labels, grad)
            cached = self._sign_cache = (target, S.detach().clone(), labels.clone(), grad.sign())
        return (S + epsilon * cached[3]).clamp(bounds.low, bounds.high)

    def _attack(self, *args, **kwargs):
        try:
            return super()._attack(*args, **kwargs)
        finally:
            self._sign_cache = None  # the cache lives for one call (its budgets), never across models or data


class UFGSM(FGSM):
    """Unsupervised FGSM [2]_: FGSM against the model's own predictions, so no ground-truth labels are needed."""

    name = "ufgsm"

    def _labels(self, target, S, labels):
        return predict_labels(target, S)


class LinfPGD(Attack):
    """L-inf projected gradient descent [3]_ configured to be strong, with a per-trial early exit.

    Each step follows the sign of the cross-entropy gradient, then projects onto the epsilon ball and the data's
    bounds (foolbox's ``LinfPGD`` schedule, written directly with ``torch.autograd.grad``). Against the victim, a
    trial leaves the loop at the first iterate that fools it and that iterate is returned: the attack is at least as
    strong as returning the last iterate, and every later step is spent only on trials still robust. Crafting on a
    substitute for transfer (`TransferAttack`, `JacobianSubstitute`) runs every step on every trial, since fooling
    the substitute is not the goal.

    Parameters
    ----------
    steps : int >= 1, default=40
    rel_stepsize : float > 0, default=2.5
        Step size is ``rel_stepsize * epsilon / steps`` (Madry et al.'s 2.5 * eps / steps), enough to walk from a
        random start to the far side of the ball. foolbox's own default (0.01/0.3 of epsilon per step, 20-40
        steps) measured weaker than FGSM on an SCP1 EEGNet.
    random_start : bool, default=True
        Start uniformly in the ball (L2: uniformly in the L2 ball).
    restarts : int >= 1, default=1
        Independent random restarts, each on the trials no earlier restart fooled.
    """

    name = "linf_pgd"

    def __init__(self, *, steps=40, rel_stepsize=2.5, random_start=True, restarts=1):
        owner = type(self).__name__
        self.steps = check_int(owner, "steps", steps)
        self.rel_stepsize = check_real(owner, "rel_stepsize", rel_stepsize)
        self.random_start = check_bool(owner, "random_start", random_start)
        self.restarts = check_int(owner, "restarts", restarts)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        return self._pgd(target, S, labels, self._budget(epsilon, S.shape), bounds, early_exit=True)

    def _craft(self, target, S, labels, *, epsilon, bounds, rng):
        return self._pgd(target, S, labels, self._budget(epsilon, S.shape), bounds, early_exit=False)

    # -- the norm's geometry -------------------------------------------------------------------------------------
    def _start(self, S, budget):
        return S + torch.empty_like(S).uniform_(-budget, budget)

    def _ascent(self, grad, stepsize):
        return stepsize * grad.sign()

    def _ball(self, S, S_adv, budget):
        return S + (S_adv - S).clamp(-budget, budget)

    # -- the loop --------------------------------------------------------------------------------------------------
    def _pgd(self, target, S, labels, budget, bounds, *, early_exit):
        stepsize = self.rel_stepsize * budget / self.steps
        best = S.clone()
        todo = torch.arange(len(S), device=S.device)  # trials no restart has fooled yet
        for restart in range(self.restarts):
            x0, y = S[todo], labels[todo]
            x = self._start(x0, budget) if self.random_start else x0.clone()
            x = self._ball(x0, x, budget).clamp(bounds.low, bounds.high)
            live = torch.arange(len(x0), device=S.device)  # rows of x still being stepped
            for step in range(self.steps + 1):
                last = step == self.steps  # the last pass only says which trials are still robust
                full = len(live) == len(x0)  # every trial still stepped: no gathers and scatters of every trial
                xl = (x.detach() if full else x[live]).requires_grad_(not last)
                with torch.set_grad_enabled(not last):
                    logits = target(xl)
                robust = logits.detach().argmax(1) == (y if full else y[live])
                if last or (early_exit and not robust.any()):
                    break
                keep = robust if early_exit else torch.ones_like(robust)
                everyone = full and bool(keep.all())
                with torch.enable_grad():
                    loss = nn.functional.cross_entropy(logits if everyone else logits[keep],
                                                       y if everyone else y[live[keep]], reduction="sum")
                    (grad,) = torch.autograd.grad(loss, xl)
                if everyone:  # the same values as the scatter below, as a new tensor
                    grad = revive_gradient(target, x, y, grad)
                    x = self._ball(x0, x + self._ascent(grad, stepsize), budget).clamp(bounds.low, bounds.high)
                    continue
                live = live[keep]
                grad = revive_gradient(target, x[live], y[live], grad[keep])
                x[live] = self._ball(x0[live], x[live] + self._ascent(grad, stepsize), budget).clamp(
                    bounds.low, bounds.high)
            fooled = torch.ones(len(x0), dtype=torch.bool, device=S.device)
            fooled[live[robust]] = False  # early exit: the rest left the loop at the iterate that fooled them
            if early_exit or restart:
                best[todo[fooled]] = x[fooled]
            else:  # crafting for transfer: every trial keeps its last iterate
                best[todo] = x
            todo = todo[~fooled]
            if not len(todo):
                break
        return best.detach()


class L2PGD(LinfPGD):
    """L2 projected gradient descent [3]_; the L2 radius matches the L-inf epsilon in energy (see budget).

    Steps along the L2-normalised gradient; random start uniform in the L2 ball; same early exit as `LinfPGD`.
    """

    name = "l2_pgd"
    norm = "l2"

    def _start(self, S, budget):
        flat = S.reshape(len(S), -1)
        d = torch.randn_like(flat)
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        r = torch.rand(len(S), 1, device=S.device, dtype=S.dtype) ** (1.0 / flat.shape[1])
        return S + (budget * r * d).reshape(S.shape)

    def _ascent(self, grad, stepsize):
        n = grad.reshape(len(grad), -1).norm(dim=1).clamp_min(1e-12)
        return stepsize * grad / n[:, None, None]

    def _ball(self, S, S_adv, budget):
        D = S_adv - S
        n = D.reshape(len(D), -1).norm(dim=1).clamp_min(1e-12)
        return S + D * (budget / n).clamp(max=1.0)[:, None, None]


class DeepFool(Attack):
    """L2 DeepFool [4]_, a minimal-norm attack: reports the smallest perturbation that flips each trial.

    Parameters
    ----------
    steps : int >= 1, default=50
    overshoot : float >= 0, default=0.02
        Relative step past the estimated boundary.
    """

    name = "deepfool"
    norm = "l2"
    minimal = True

    def __init__(self, *, steps=50, overshoot=0.02):
        self.steps = check_int("DeepFool", "steps", steps)
        self.overshoot = check_real("DeepFool", "overshoot", overshoot, low_open=False)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        n_classes = target(S[:1]).shape[1]
        attack = fb.attacks.L2DeepFoolAttack(steps=self.steps, candidates=min(n_classes, 10),
                                             overshoot=self.overshoot)
        return run_foolbox(attack, target, S, labels, budget=None, bounds=bounds)


class CarliniWagnerL2(Attack):
    """Carlini-Wagner L2 [5]_, minimal-norm; fewer steps than foolbox's 10000 default to fit a CPU.

    Parameters
    ----------
    binary_search_steps : int >= 1, default=3
    steps : int >= 1, default=50
        Optimisation steps per binary-search step.
    stepsize : float > 0, default=0.01
    initial_const : float > 0, default=1.0
        First trade-off constant of the binary search (0 would never grow).
    """

    name = "cw_l2"
    norm = "l2"
    minimal = True

    def __init__(self, *, binary_search_steps=3, steps=50, stepsize=0.01, initial_const=1.0):
        self.binary_search_steps = check_int("CarliniWagnerL2", "binary_search_steps", binary_search_steps)
        self.steps = check_int("CarliniWagnerL2", "steps", steps)
        self.stepsize = check_real("CarliniWagnerL2", "stepsize", stepsize)
        self.initial_const = check_real("CarliniWagnerL2", "initial_const", initial_const)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        attack = fb.attacks.L2CarliniWagnerAttack(binary_search_steps=self.binary_search_steps, steps=self.steps,
                                                  stepsize=self.stepsize, initial_const=self.initial_const)
        S_adv = run_foolbox(attack, target, S, labels, budget=None, bounds=bounds)
        # C&W returns the clean trial where it failed; the template gives those an infinite norm.
        return torch.as_tensor(S_adv)
