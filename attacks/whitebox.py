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

from ._foolbox import fb, run_foolbox
from ._params import check_bool, check_int, check_real
from .base import Attack, predict_labels


class FGSM(Attack):
    """Fast gradient sign method: one step of size epsilon along the sign of the loss gradient [1]_.

    Not nested: every budget is one fresh step from the clean trial, so each output is the FGSM perturbation of
    that size (and its SNR is that of the budget); the per-trial worst case over attacks is monotone anyway.
    """

    name = "fgsm"
    nested = False

    def _labels(self, target, S, labels):
        return labels

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        return run_foolbox(fb.attacks.FGSM(), target, S, self._labels(target, S, labels), budget=epsilon,
                           bounds=bounds)


class UFGSM(FGSM):
    """Unsupervised FGSM [2]_: FGSM against the model's own predictions, so no ground-truth labels are needed."""

    name = "ufgsm"

    def _labels(self, target, S, labels):
        return predict_labels(target, S)


class LinfPGD(Attack):
    """L-inf projected gradient descent [3]_ configured to be strong.

    Parameters
    ----------
    steps : int >= 1, default=40
    rel_stepsize : float > 0, default=2.5
        Step size is ``rel_stepsize * epsilon / steps`` (Madry et al.'s 2.5 * eps / steps), enough to walk from a
        random start to the far side of the ball. foolbox's own default (0.01/0.3 of epsilon per step, 20-40
        steps) measured weaker than FGSM on an SCP1 EEGNet.
    random_start : bool, default=True
    restarts : int >= 1, default=1
        Independent random restarts; a trial counts as fooled if any restart fools it.
    """

    name = "linf_pgd"
    foolbox_class = "LinfPGD"

    def __init__(self, *, steps=40, rel_stepsize=2.5, random_start=True, restarts=1):
        owner = type(self).__name__
        self.steps = check_int(owner, "steps", steps)
        self.rel_stepsize = check_real(owner, "rel_stepsize", rel_stepsize)
        self.random_start = check_bool(owner, "random_start", random_start)
        self.restarts = check_int(owner, "restarts", restarts)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        budget = self._budget(epsilon, S.shape)
        attack = getattr(fb.attacks, self.foolbox_class)(
            steps=self.steps, abs_stepsize=self.rel_stepsize * budget / self.steps / bounds.span,
            random_start=self.random_start)
        best = None
        for _ in range(self.restarts):
            S_adv = run_foolbox(attack, target, S, labels, budget=budget, bounds=bounds)
            if best is None:
                best = S_adv
            else:
                fooled = predict_labels(target, S_adv) != labels
                best[fooled] = S_adv[fooled]
        return best


class L2PGD(LinfPGD):
    """L2 projected gradient descent [3]_; the L2 radius matches the L-inf epsilon in energy (see budget)."""

    name = "l2_pgd"
    norm = "l2"
    foolbox_class = "L2PGD"


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
