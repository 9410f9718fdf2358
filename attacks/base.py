"""The attack template: `Attack`, `AttackOutput` and the spaces attacks work in.

``Attack.__call__`` is shared by every attack (foolbox's ``FixedEpsilonAttack`` pattern): it validates the input,
maps EEG (microvolts) to budget space (``x / scale``, see `attacks.budget`), hands the subclass's ``_run`` only what
its threat model may see, projects each result onto its budget, and puts the model back into the mode it was in.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from typing import ClassVar, final

import numpy as np
import torch
from torch import nn

from ..data._checks import ConfigError, DataError, EEGRobustError, check_option, check_random_state, check_X
from ..models._seed import seeded

from ._params import (ConfigTypeError, check_class_labels, check_int, check_real, check_scale, check_seed,
                      check_X_numeric)
from .budget import BUDGET_UNITS, Bounds, channel_scale, check_epsilons, l2_budget

THREAT_MODELS = ("white_box", "gray_box", "black_box", "control")
NORMS = ("linf", "l2")


class ModelOutputError(EEGRobustError, ValueError):
    """The model under attack returned no usable logits (NaN/Inf, or not of shape (n_trials, n_outputs))."""


@dataclass
class AttackOutput:
    """What one attack produced at one budget.

    Attributes
    ----------
    epsilon : float
        The budget, in the units of `attacks.budget` (relative to channel std by default).
    X_adv : ndarray of shape (n_trials, n_chans, n_times), float32
        Adversarial EEG in microvolts; trials that were not attacked are the clean ones.
    n_queries : ndarray of shape (n_trials,) or None
        Queries to the victim per trial (black-box attacks only).
    min_norm : ndarray of shape (n_trials,) or None
        Minimal-norm attacks: the budget-space norm that flipped each trial (inf where the attack failed); L2:
        compare with `attacks.budget.l2_budget`, or put on the epsilon grid with `attacks.budget.norm_as_epsilon`.
    """

    epsilon: float
    X_adv: np.ndarray
    n_queries: np.ndarray | None = None
    min_norm: np.ndarray | None = None
    info: dict = field(default_factory=dict)


class BudgetSpace(nn.Module):
    """Feed a model ``s * scale``: the model as seen from budget space."""

    def __init__(self, model: nn.Module, scale: np.ndarray):
        super().__init__()
        self.model = model
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).reshape(1, -1, 1))

    def forward(self, s):
        return self.model(s * self.scale)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put ``model`` in eval mode without weight gradients; restore both afterwards."""
    modes = [(m, m.training) for m in model.modules()]  # per module: a frozen BatchNorm stays frozen
    grads = [p.requires_grad for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)  # eagerpy/foolbox otherwise compute weight gradients too (about 1.5x slower)
    try:
        yield model
    finally:
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
        for m, training in modes:
            m.training = training


def check_logits(model: nn.Module, out, n_trials: int, *, first: int = 0) -> None:
    """Raise `ModelOutputError` unless ``out`` holds finite logits of shape (n_trials, n_outputs >= 2)."""
    name = type(model).__name__
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n_trials or out.shape[1] < 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelOutputError(f"{name} must return logits of shape (n_trials, n_outputs >= 2), got {shape} for "
                               f"input of {n_trials} trials.")
    bad = ~torch.isfinite(out).all(1)
    if bad.any():
        trial = first + int(bad.nonzero()[0])
        raise ModelOutputError(f"{name} returned NaN/Inf logits on clean input ({int(bad.sum())} trial(s) from "
                               f"trial {trial}); check its weights (NaN after a diverged training?) and that X is "
                               "in microvolts.")


def check_base(owner: str, base):
    """The white-box attack a wrapper (transfer, substitute) runs on its surrogate."""
    if not isinstance(base, Attack) or base.threat_model != "white_box":
        got = repr(base) if isinstance(base, Attack) else type(base).__name__
        raise ConfigTypeError(f"{owner} base must be a white-box attacks.Attack such as LinfPGD(), got {got}.")
    return base


def margin_terms(z: torch.Tensor, y: torch.Tensor):
    """The true logit and the largest other logit per trial."""
    z_y = z.gather(1, y[:, None]).squeeze(1)
    z_other = z.scatter(1, y[:, None], float("-inf")).amax(1)
    return z_y, z_other


def revive_gradient(target: nn.Module, x: torch.Tensor, labels: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``grad``, the cross-entropy gradient at the trials ``x``, with every all-zero row replaced by the gradient of
    the logit margin ``max_{j != y} z_j - z_y`` there.

    Cross-entropy saturates: once a trial's logit gap passes about 100, softmax is exactly one-hot in float32 and the
    gradient exactly 0 (a model trained in volts and fed microvolts has logits 1e6 times too large; an overconfident
    model gets there too), so a sign-gradient attack would not move the trial and call it robust (gradient masking
    by float round-off). The margin's gradient does not vanish with the logits' scale. Rows whose gradient is not
    all zero are returned as they are, bit for bit; with none all zero, ``grad`` itself is returned.
    """
    dead = (grad.reshape(len(grad), -1) == 0).all(1)
    if not dead.any():
        return grad
    with torch.enable_grad():
        xd = x[dead].detach().requires_grad_(True)
        z_y, z_other = margin_terms(target(xd), labels[dead])
        (g,) = torch.autograd.grad((z_other - z_y).sum(), xd)
    grad = grad.clone()
    grad[dead] = g.to(grad.dtype)
    return grad


def predict_labels(module: nn.Module, S: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Arg-max labels of ``module`` on ``S`` in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([module(S[i:i + batch_size]).argmax(1) for i in range(0, len(S), batch_size)])


class Attack(abc.ABC):
    """Base class: subclasses set the class attributes and write ``_run``.

    Class attributes
    ----------------
    name : str
        Registry key.
    threat_model : {"white_box", "gray_box", "black_box", "control"}
        What ``_run`` receives as ``target``: the victim in budget space (white-box), the surrogate in budget
        space (gray-box, set with ``surrogate=``), a query-counting oracle (black-box), or nothing (control).
    norm : {"linf", "l2"}
    minimal : bool
        True for minimal-norm attacks (DeepFool, C&W, HopSkipJump): ``_run`` returns one unbounded adversarial
        batch and the template reports, at each epsilon, the trials whose minimal perturbation fits.
    nested : bool
        White-box fixed-budget attacks keep an adversarial example found at a smaller epsilon for the larger
        ones (it lies inside the larger ball) and only attack the trials still correct: worst case over the
        ball, and less work.
    """

    name: ClassVar[str] = ""
    threat_model: ClassVar[str] = "white_box"
    norm: ClassVar[str] = "linf"
    minimal: ClassVar[bool] = False
    nested: ClassVar[bool] = True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    # -- the template ----------------------------------------------------------------------------------------
    @final
    def __call__(self, model: nn.Module, X, y, *, epsilons, scale=None, unit: str = "rel",
                 random_state=0, batch_size: int = 512, sfreq: float | None = None) -> list[AttackOutput]:
        """Attack ``model`` on ``(X, y)`` at every epsilon.

        Parameters
        ----------
        model : torch.nn.Module
            The victim: maps microvolt EEG of shape (n, n_chans, n_times) to logits.
        X : ndarray of shape (n_trials, n_chans, n_times)
            Clean EEG in microvolts (the trials to attack).
        y : ndarray of shape (n_trials,)
            True class indices.
        epsilons : sequence of float
            Budgets, ascending order is not required.
        scale : ndarray of shape (n_chans,), default=None
            Budget unit per channel in microvolts; by default `channel_scale(X, unit)`. Pass the scale of the
            whole evaluation set when attacking a subset, so all attacks share one budget.
        random_state : int >= 0, numpy Generator or None, default=0
            Seed of the attack's randomness (random starts, noise, query directions).
        batch_size : int >= 1, default=512
        sfreq : float > 0 or None, default=None
            Sampling rate in Hz. Attacks constrained to a frequency band (``band=``) need it; others ignore it.

        Raises
        ------
        DataError, ConfigError
            (ValueErrors) for bad X, y, epsilons, scale, unit, random_state or batch_size, naming the value.
        ModelOutputError
            When the model returns NaN/Inf logits (or logits of the wrong shape) on the clean trials, has NaN/Inf
            input gradients there (gradient attacks), or the attack's result is not finite.
        ConfigError
            When the model's outputs are random in eval mode (stochastic defenses fake robustness).
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                            "For a skorch/braindecode EEGClassifier pass clf.module_.")
        X = check_X(check_X_numeric(X)).astype(np.float32, copy=False)
        y = check_class_labels(y, len(X))
        if isinstance(epsilons, (list, tuple)) and any(isinstance(e, (str, bytes)) for e in epsilons):
            raise ConfigError(f"epsilons must be numbers, got {epsilons!r}. Example: epsilons=(0.05, 0.1).")
        epsilons = check_epsilons(epsilons)
        check_option("budget unit", unit, BUDGET_UNITS)
        scale = channel_scale(X, unit) if scale is None else check_scale(scale, X.shape[1])
        rng = check_random_state(check_seed(random_state))
        batch_size = check_int("", "batch_size", batch_size)
        self._sfreq = None if sfreq is None else check_real("", "sfreq", sfreq)
        self._check_sfreq(X.shape)
        with eval_mode(model), seeded(int(rng.integers(2**31))):
            n_outputs = self._check_outputs(model, X, batch_size)
            if y.max() >= n_outputs:
                raise DataError(f"y (labels) must lie in [0, {n_outputs - 1}] for a model with {n_outputs} outputs, "
                                f"got {sorted(set(y[y >= n_outputs].tolist()))[:5]}.")
            grad_model = self._gradient_model(model)
            if grad_model is not None:
                with eval_mode(grad_model):
                    self._check_gradients(grad_model, X[:batch_size], y[:batch_size])
            return self._attack(model, X, y, epsilons, scale, rng, batch_size)

    def _check_outputs(self, model, X, batch_size):
        """Refuse a model without finite logits on the clean trials, or with random outputs in eval mode."""
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            x = torch.from_numpy(X[:2]).to(dev)
            a, b = model(x), model(x)
            check_logits(model, a, len(x))
            for i in range(2, len(X), batch_size):  # NaN may appear on some trials only
                x = torch.from_numpy(X[i:i + batch_size]).to(dev)
                check_logits(model, model(x), len(x), first=i)
        if not torch.allclose(a, b, atol=1e-5) and getattr(self, "eot_iter", 1) < 2:
            raise ConfigError(f"{type(model).__name__} gives different outputs for the same input in eval mode; "
                              "stochastic defenses fake robustness without Expectation over Transformation. Use an "
                              "attack with eot_iter >= 2 (e.g. make_attack('apgd_ce', eot_iter=20)), or evaluate a "
                              "deterministic model.")
        return a.shape[1]

    def _check_sfreq(self, shape) -> None:
        """Attacks that need the sampling rate (a frequency band) check it here; the rest ignore it."""

    def _gradient_model(self, model):
        """The module whose input gradients the attack follows (white-box: the victim), or None."""
        return model if self.threat_model == "white_box" else None

    @staticmethod
    def _check_gradients(model, X, y):
        """Refuse NaN/Inf input gradients: foolbox's sign(NaN) is 0, so gradient attacks would silently stand still."""
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.enable_grad():
            x = torch.from_numpy(X).to(dev).requires_grad_(True)
            loss = nn.functional.cross_entropy(model(x), torch.from_numpy(y).to(dev))
            (g,) = torch.autograd.grad(loss, x)
        bad = ~torch.isfinite(g).reshape(len(g), -1).all(1)
        if bad.any():
            raise ModelOutputError(
                f"{type(model).__name__} has NaN/Inf input gradients on clean input ({int(bad.sum())} of {len(g)} "
                f"trial(s) checked); gradient attacks would take no step and report false robustness. Look for "
                "sqrt/log/division of zero in its layers.")

    def _attack(self, model, X, y, epsilons, scale, rng, batch_size):
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        victim = BudgetSpace(model, scale).to(dev)
        S = torch.from_numpy(X / scale[None, :, None].astype(np.float32)).to(dev)
        bounds = Bounds.from_data(S.cpu().numpy(), pad=max(1.0, 2 * max(epsilons)))
        target = self._target(victim)
        labels = torch.from_numpy(y).to(dev)
        order = sorted(range(len(epsilons)), key=lambda i: epsilons[i])
        outputs: list[AttackOutput | None] = [None] * len(epsilons)
        self._queries = None  # attacks that query the victim set this to the per-trial count of each _run
        self._queries_at = None  # minimal query attacks may set a function eps -> per-trial queries to reach eps
        queries = np.zeros(len(S)) if self.threat_model == "black_box" else None
        if self.minimal:
            S_adv = self._checked(self._run(target, S, labels, epsilon=None, bounds=bounds, rng=rng), None)
            if queries is not None:
                queries += self._queries
            norms = self._norms(S_adv - S)
            still = predict_labels(victim, S_adv) == labels
            norms[still.cpu().numpy()] = np.inf
            for i in order:
                budget = self._budget(epsilons[i], X.shape)
                fits = torch.from_numpy(norms <= budget * (1 + 1e-4)).to(dev)
                S_i = torch.where(fits[:, None, None], S_adv, S)
                q = queries if self._queries_at is None else np.asarray(self._queries_at(budget), dtype=float)
                outputs[i] = self._output(epsilons[i], X, S, S_i, scale, q, min_norm=norms.copy())
            return outputs
        best = S.clone()
        todo = torch.ones(len(S), dtype=torch.bool, device=dev)
        for i in order:
            eps = epsilons[i]
            idx = todo.nonzero().flatten() if self.nested else torch.arange(len(S), device=dev)
            if eps > 0 and len(idx):
                S_adv = self._run(target, S[idx], labels[idx], epsilon=eps, bounds=bounds, rng=rng)
                S_adv = self._checked(S_adv, eps)
                if queries is not None:  # nested: cumulative, what reaching this budget cost; else this run's
                    queries = queries if self.nested else np.zeros(len(S))
                    queries[idx.cpu().numpy()] += self._queries
                S_adv = self._project(S[idx], S_adv, eps, bounds)
                if self.nested:
                    fooled = predict_labels(victim, S_adv, batch_size) != labels[idx]
                    best[idx[fooled]] = S_adv[fooled]
                    todo[idx[fooled]] = False
                    S_i = best.clone()
                    S_i[idx[~fooled]] = S_adv[~fooled]  # the attempt at this budget, so norms and SNR are its own
                else:
                    S_i = S.clone()
                    S_i[idx] = S_adv
            else:
                S_i = best.clone() if self.nested else S.clone()
            outputs[i] = self._output(eps, X, S, S_i, scale, queries)
        return outputs

    def _checked(self, S_adv, eps):
        """Refuse non-finite adversarial trials: the model's outputs or gradients went NaN/Inf near the input."""
        S_adv = torch.as_tensor(S_adv)
        if not torch.isfinite(S_adv).all():
            at = "" if eps is None else f" at epsilon={eps:g}"
            raise ModelOutputError(f"{self!r} produced NaN/Inf trials{at}: the model's logits or gradients are not "
                                   "finite near the clean input (check its weights and layers).")
        return S_adv

    def _output(self, eps, X, S, S_adv, scale, queries, min_norm=None) -> AttackOutput:
        delta = ((S_adv - S).cpu().numpy() * scale[None, :, None]).astype(np.float32)
        X_adv = self._within_budget(X, X + delta, eps, scale)
        return AttackOutput(eps, X_adv, None if queries is None else queries.copy(), min_norm, self._info())

    def _within_budget(self, X, X_adv, eps, scale) -> np.ndarray:
        """``X_adv`` with every trial inside its budget exactly, in float64 arithmetic on the float32 values.

        The attacks project in budget space, and the way back to microvolts (``X + delta * scale`` in float32) can
        leave a sample one float32 step beyond ``eps * scale`` (9e-5 relative was seen; a minimal-norm trial fits a
        budget within 1e-4). Such samples are clipped back (L-inf: to ``eps * scale``, then stepped towards the
        clean value one float32 step at a time while still outside; L2: the trial's perturbation is shrunk until
        its norm in budget units is at most the radius). Trials inside their budget are returned bit for bit."""
        if eps is None:
            return X_adv
        X64 = X.astype(np.float64)
        D = X_adv.astype(np.float64) - X64
        s64 = np.asarray(scale, dtype=np.float64)[None, :, None]
        if self.norm == "linf":
            lim = np.broadcast_to(eps * s64, X.shape)
            over = np.abs(D) > lim
            if not over.any():
                return X_adv
            X_adv = X_adv.copy()
            X_adv[over] = (X64 + np.clip(D, -lim, lim))[over].astype(np.float32)
            over = np.abs(X_adv.astype(np.float64) - X64) > lim
            while over.any():
                X_adv[over] = np.nextafter(X_adv[over], X[over])
                over = np.abs(X_adv.astype(np.float64) - X64) > lim
            return X_adv
        radius = self._budget(eps, X.shape)
        norms = np.sqrt(((D / s64) ** 2).reshape(len(D), -1).sum(1))
        over = norms > radius
        if not over.any():
            return X_adv
        X_adv = X_adv.copy()
        shrink = radius / norms[over]
        for _ in range(64):  # each pass shrinks a little more; float32 rounding moves the norm by ~1e-7
            X_adv[over] = (X64[over] + D[over] * shrink[:, None, None]).astype(np.float32)
            norms_now = np.sqrt((((X_adv[over].astype(np.float64) - X64[over]) / s64) ** 2)
                                .reshape(int(over.sum()), -1).sum(1))
            still = norms_now > radius
            if not still.any():
                break
            shrink = np.where(still, shrink * (1 - 1e-6), shrink)
        return X_adv

    def _info(self) -> dict:
        """Attack-specific extras recorded with every output."""
        return {}

    def _target(self, victim):
        """What ``_run`` may see (the template hands white-box attacks the victim itself)."""
        return victim

    def _budget(self, epsilon: float, shape) -> float:
        return epsilon if self.norm == "linf" else l2_budget(epsilon, shape[1], shape[2])

    def _norms(self, D: torch.Tensor) -> np.ndarray:
        D = D.reshape(len(D), -1)
        n = D.abs().amax(1) if self.norm == "linf" else D.norm(dim=1)
        return n.double().cpu().numpy()

    def _project(self, S, S_adv, eps, bounds: Bounds) -> torch.Tensor:
        """Clip ``S_adv`` onto the epsilon ball around ``S`` and into the bounds (float round-off included)."""
        D = S_adv - S
        if self.norm == "linf":
            D = D.clamp(-eps, eps)
        else:
            budget = self._budget(eps, S.shape)
            n = D.reshape(len(D), -1).norm(dim=1).clamp_min(1e-12)
            D = D * (budget / n).clamp(max=1.0)[:, None, None]
        return (S + D).clamp(bounds.low, bounds.high)

    @abc.abstractmethod
    def _run(self, target, S, labels, *, epsilon, bounds, rng) -> torch.Tensor:
        """Return adversarial trials in budget space, shape of ``S`` (``epsilon`` None for minimal attacks)."""

    def craft(self, target: nn.Module, S: torch.Tensor, labels: torch.Tensor, *, epsilon: float,
              bounds: Bounds | None = None, rng=None) -> torch.Tensor:
        """Adversarial trials of one batch, in budget space, for training-time use (adversarial training arms).

        ``target`` maps budget-space trials to logits (`BudgetSpace`); no output checks, no early exit (every trial
        gets every step, as for transfer), no bounds unless given. The caller owns the model's mode and weight
        gradients (`eval_mode`)."""
        bounds = Bounds(-float("inf"), float("inf")) if bounds is None else bounds
        return self._craft(target, S, labels, epsilon=epsilon, bounds=bounds, rng=rng).detach()

    def _craft(self, target, S, labels, *, epsilon, bounds, rng) -> torch.Tensor:
        """``_run`` on a substitute whose adversarial trials are sent to another model (transfer).

        Attacks that stop at a trial's first fooling iterate (`LinfPGD`) run every step here instead: fooling the
        substitute is not the goal, so stopping there would craft weaker transfer trials.
        """
        return self._run(target, S, labels, epsilon=epsilon, bounds=bounds, rng=rng)
