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

from ..data._checks import ConfigError, DataError, check_X, check_random_state

from .budget import Bounds, channel_scale, check_epsilons, l2_budget

THREAT_MODELS = ("white_box", "gray_box", "black_box", "control")
NORMS = ("linf", "l2")


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
        Minimal-norm attacks: the budget-space norm that flipped each trial (inf where the attack failed).
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
                 random_state=0, batch_size: int = 512) -> list[AttackOutput]:
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
        random_state : int or None, default=0
            Seed of the attack's randomness (random starts, noise, query directions).
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                            "For a skorch/braindecode EEGClassifier pass clf.module_.")
        X = check_X(X).astype(np.float32, copy=False)
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (len(X),):
            raise DataError(f"y must have shape ({len(X)},), got {y.shape}.")
        epsilons = check_epsilons(epsilons)
        scale = channel_scale(X, unit) if scale is None else np.asarray(scale, dtype=np.float64)
        if scale.shape != (X.shape[1],) or not np.all(scale > 0):
            raise ConfigError(f"scale must be {X.shape[1]} positive values (one per channel), got shape {scale.shape}.")
        rng = check_random_state(random_state)
        with eval_mode(model), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            n_outputs = self._check_outputs(model, X[:2])
            if y.min() < 0 or y.max() >= n_outputs:
                raise DataError(f"y (labels) must lie in [0, {n_outputs - 1}] for a model with {n_outputs} outputs, "
                                f"got {sorted(set(y[(y < 0) | (y >= n_outputs)].tolist()))[:5]}.")
            return self._attack(model, X, y, epsilons, scale, rng, batch_size)

    def _check_outputs(self, model, X2):
        """Refuse a model whose outputs are random in eval mode (they would fake robustness)."""
        dev = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            x = torch.from_numpy(X2).to(dev)
            a, b = model(x), model(x)
        if not torch.allclose(a, b, atol=1e-5):
            raise ConfigError(f"{type(model).__name__} gives different outputs for the same input in eval mode; "
                              "stochastic defenses fake robustness. Evaluate a deterministic model (or use EOT).")
        return a.shape[1]

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
        queries = np.zeros(len(S)) if self.threat_model == "black_box" else None
        if self.minimal:
            S_adv = self._run(target, S, labels, epsilon=None, bounds=bounds, rng=rng)
            if queries is not None:
                queries += self._queries
            norms = self._norms(S_adv - S)
            still = predict_labels(victim, S_adv) == labels
            norms[still.cpu().numpy()] = np.inf
            for i in order:
                budget = self._budget(epsilons[i], X.shape)
                fits = torch.from_numpy(norms <= budget * (1 + 1e-4)).to(dev)
                S_i = torch.where(fits[:, None, None], S_adv, S)
                outputs[i] = self._output(epsilons[i], X, S, S_i, scale, queries, min_norm=norms.copy())
            return outputs
        best = S.clone()
        todo = torch.ones(len(S), dtype=torch.bool, device=dev)
        for i in order:
            eps = epsilons[i]
            idx = todo.nonzero().flatten() if self.nested else torch.arange(len(S), device=dev)
            if eps > 0 and len(idx):
                S_adv = self._run(target, S[idx], labels[idx], epsilon=eps, bounds=bounds, rng=rng)
                if queries is not None:  # nested: cumulative, what reaching this budget cost; else this run's
                    queries = queries if self.nested else np.zeros(len(S))
                    queries[idx.cpu().numpy()] += self._queries
                S_adv = self._project(S[idx], S_adv, eps, bounds)
                if self.nested:
                    fooled = predict_labels(victim, S_adv, batch_size) != labels[idx]
                    best[idx[fooled]] = S_adv[fooled]
                    todo[idx[fooled]] = False
                    S_i = best.clone()
                else:
                    S_i = S.clone()
                    S_i[idx] = S_adv
            else:
                S_i = best.clone() if self.nested else S.clone()
            outputs[i] = self._output(eps, X, S, S_i, scale, queries)
        return outputs

    def _output(self, eps, X, S, S_adv, scale, queries, min_norm=None) -> AttackOutput:
        delta = ((S_adv - S).cpu().numpy() * scale[None, :, None]).astype(np.float32)
        return AttackOutput(eps, X + delta, None if queries is None else queries.copy(), min_norm,
                            self._info())

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
