"""Universal adversarial perturbation (UAP): one perturbation, fitted on the attacker's data, added to every trial.

A universal perturbation needs no access to the trial being attacked, so it can be injected in real time, before
the trial is even recorded [1]_ [2]_. `UniversalPerturbation` fits one ``delta`` of shape (n_chans, n_times) in
budget space on *attacker data* (for example trials held out of the evaluation), labelled by the victim's own
predictions (no ground truth, as Liu et al.'s TLM-UAP [2]_), by sign-gradient ascent on the mean cross-entropy
over mini-batches, projected onto the L-inf ball after every step. The same ``delta`` is then added to every
evaluation trial: the evaluation trials and their labels are never used to fit.

References
----------
.. [1] Moosavi-Dezfooli, Fawzi, Fawzi and Frossard, "Universal adversarial perturbations", CVPR 2017.
.. [2] Liu, Zhang, Wu et al., "Universal adversarial perturbations for CNN classifiers in EEG-based BCIs",
       Journal of Neural Engineering 18(4), 2021 (TLM-UAP).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from ..data._checks import ConfigError
from ..data.containers import EEGData

from ._params import ConfigTypeError, check_bool, check_int, check_real
from .base import Attack, predict_labels


class UniversalPerturbation(Attack):
    """L-inf universal perturbation fitted on attacker data (see the module docstring).

    Parameters
    ----------
    fit_data : EEGData or None, default=None
        The attacker's trials (microvolts; their labels are ignored: the victim labels them). Required when the
        attack is called; same channels and epoch length as the evaluation trials, none of them shared.
    epochs : int >= 1, default=20
        Passes over ``fit_data``.
    batch_size : int >= 1, default=32
        Fit trials per sign-gradient step (shuffled each epoch).
    rel_stepsize : float > 0, default=2.5
        Step size ``rel_stepsize * epsilon / n_steps`` with ``n_steps = epochs * ceil(n_fit / batch_size)``
        (Madry et al.'s 2.5 * eps / steps, over the whole fit).
    random_start : bool, default=True
        Start from uniform noise in the ball instead of 0.

    Notes
    -----
    ``fit_data`` is mapped to budget space with the scale the template receives (the victim's
    ``BudgetSpace.scale``), so ``delta`` has the units of the evaluation trials' budget. One ``delta`` is fitted
    per epsilon (``nested = False``). ``info["fit_fooling_rate"]`` is the fraction of fit trials whose label
    the perturbation changes (0 at epsilon 0).
    """

    name = "uap"
    #: The cell runner gives it the fold's held-out attacker trials (``fit_data``) and evaluates on the rest.
    needs_fit_data = True
    nested = False  # one delta for all trials: the template must not keep per-trial results across budgets

    def __init__(self, *, fit_data: EEGData | None = None, epochs=20, batch_size=32, rel_stepsize=2.5,
                 random_start=True):
        owner = type(self).__name__
        if fit_data is not None and not isinstance(fit_data, EEGData):
            raise ConfigTypeError(f"{owner} fit_data must be an EEGData of attacker trials (or None), got "
                                  f"{type(fit_data).__name__}.")
        self.fit_data = fit_data
        self.epochs = check_int(owner, "epochs", epochs)
        self.batch_size = check_int(owner, "batch_size", batch_size)
        self.rel_stepsize = check_real(owner, "rel_stepsize", rel_stepsize)
        self.random_start = check_bool(owner, "random_start", random_start)

    def __repr__(self):
        args = [f"{k}={_describe(v) if k == 'fit_data' else repr(v)}" for k, v in self.get_params().items()]
        return f"{type(self).__name__}({', '.join(args)})"

    def _check_sfreq(self, shape) -> None:
        """The template's pre-flight hook: attacker data given must match the evaluation trials' shape and rate."""
        fit = self.fit_data
        if fit is None:
            return  # refused in _target, after the template's checks of the model (NaN models are named first)
        if fit.X.shape[1:] != tuple(shape[1:]):
            raise ConfigError(f"uap fit_data has {fit.n_chans} channels x {fit.n_times} samples but the evaluation "
                              f"trials have {shape[1]} x {shape[2]}; fit on trials of the same montage and "
                              "epoch length.")
        if self._sfreq is not None and abs(fit.sfreq - self._sfreq) > 1e-6 * self._sfreq:
            raise ConfigError(f"uap fit_data is sampled at {fit.sfreq:g} Hz but the evaluation trials at "
                              f"{self._sfreq:g} Hz; resample one of them.")

    def _target(self, victim):
        if self.fit_data is None:
            raise ConfigError("uap needs attacker data to fit on: build it with make_attack('uap', fit_data=...) "
                              "giving an EEGData of held-out trials (e.g. test.subset(seed_idx)), never the "
                              "evaluation trials.")
        self._fooling, self._fit = 0.0, None
        return victim

    def _fit_space(self, target, S):
        """``fit_data`` in budget space (the template's own arithmetic) and the victim's labels; once per call."""
        if self._fit is None:
            scale = target.scale.reshape(-1).cpu().numpy()
            S_fit = torch.from_numpy(self.fit_data.X / scale[None, :, None]).to(S.device)
            shared = {_digest(r) for r in S_fit} & {_digest(r) for r in S}
            if shared:
                raise ConfigError(f"uap fit_data shares {len(shared)} trial(s) with the evaluation trials; fit on "
                                  "held-out attacker trials and evaluate on the rest.")
            self._fit = (S_fit, predict_labels(target, S_fit))  # the victim's labels, not ground truth
        return self._fit

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        S_fit, y_fit = self._fit_space(target, S)
        n = len(S_fit)
        per_epoch = -(-n // self.batch_size)
        alpha = self.rel_stepsize * epsilon / (self.epochs * per_epoch)
        shape = tuple(S.shape[1:])
        if self.random_start:
            delta = torch.from_numpy(rng.uniform(-epsilon, epsilon, size=shape).astype(np.float32)).to(S.device)
        else:
            delta = torch.zeros(shape, device=S.device)
        for _ in range(self.epochs):  # the template has put the victim in eval mode without weight gradients
            order = torch.from_numpy(rng.permutation(n)).to(S.device)
            for i in range(0, n, self.batch_size):
                idx = order[i:i + self.batch_size]
                delta.requires_grad_(True)
                loss = nn.functional.cross_entropy(target(S_fit[idx] + delta), y_fit[idx])
                (grad,) = torch.autograd.grad(loss, delta)
                delta = (delta.detach() + alpha * grad.sign()).clamp(-epsilon, epsilon)
        delta = delta.detach()
        fooled = predict_labels(target, S_fit + delta) != y_fit
        self._fooling = float(fooled.float().mean())
        return S + delta[None]

    def _info(self) -> dict:
        n_fit = None if self.fit_data is None else self.fit_data.n_trials
        return {"fit_fooling_rate": self._fooling, "n_fit_trials": n_fit}


def _describe(data) -> str:
    return "None" if data is None else f"<EEGData {data.n_trials} trials x {data.n_chans} x {data.n_times}>"


def _digest(row: torch.Tensor) -> bytes:
    return hashlib.blake2b(row.detach().cpu().numpy().tobytes(), digest_size=16).digest()
