"""Papernot et al.'s black-box attack [1]_ (as in Zhang and Wu [2]_): a substitute grown through the oracle with
Jacobian-based dataset augmentation, then a white-box attack on it transferred to the victim.

References
----------
.. [1] Papernot et al., "Practical black-box attacks against machine learning", ACM AsiaCCS 2017.
.. [2] Zhang and Wu, "On the vulnerability of CNN classifiers in EEG-based BCIs", IEEE TNSRE 27(5), 2019.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data._checks import ConfigError, check_option
from ..data.containers import EEGData
from ..models.decoder import predict

from ._params import ConfigTypeError, check_int, check_real, check_seed
from .base import Attack, BudgetSpace, check_base, eval_mode
from .oracle import QueryOracle
from .whitebox import LinfPGD

SELECTIONS = ("ensemble", "agreement")
#: The architectures an "ensemble" or "agreement" substitute is drawn from by default: Zhang and Wu's three.
MEMBERS = ("eegnet", "deep4", "shallow")


class SubstituteEnsemble(nn.Module):
    """Several substitutes as one model: the mean of their log-probabilities (microvolts in, log-probs out).

    A transfer attack crafted on an ensemble transfers better than one crafted on any member (Liu et al.,
    "Delving into transferable adversarial examples", ICLR 2017), and the attacker need not guess the victim's
    architecture.
    """

    def __init__(self, members):
        super().__init__()
        if not members or not all(isinstance(m, nn.Module) for m in members):
            raise TypeError("SubstituteEnsemble needs a non-empty list of torch.nn.Module members.")
        self.members = nn.ModuleList(members)
        self.arch = "ensemble(" + ",".join(str(getattr(m, "arch", type(m).__name__)) for m in members) + ")"

    def forward(self, x):
        return torch.stack([torch.log_softmax(m(x), dim=1) for m in self.members]).mean(0)


class JacobianSubstitute(Attack):
    """Papernot et al.'s black-box attack [1]_: grow a substitute through the oracle, then transfer.

    The attacker holds an unlabelled seed set (for example 150 trials kept out of the evaluation). Each round
    labels the current set by querying the victim, trains the substitute, and adds ``x + lam * sign(dF_y/dx)``
    for every trial (Jacobian-based dataset augmentation). Adversarial trials are then crafted on the
    substitute with ``base`` and sent to the victim.

    Parameters
    ----------
    seed : EEGData
        The attacker's seed trials (their labels are ignored: the oracle labels them).
    arch : str, default="eegnet"
        Substitute architecture: a `models` registry name; ``"ensemble"``: one substitute of each of ``members``
        that fits the trial length, trained on the same queried set (the augmentation follows the
        ensemble's Jacobian) and attacked as one model (`SubstituteEnsemble`, mean log-probabilities); or
        ``"agreement"``: the same members, and the one that agrees most with the victim on a held-out fifth of
        the seed trials is the substitute (their labels are queried and counted; a black-box attacker cannot see
        the victim's architecture, only how well a guess mimics it).
    members : sequence of str, default=("eegnet", "deep4", "shallow")
        The candidate architectures of ``"ensemble"`` and ``"agreement"`` (distinct registry names); ignored
        for a single ``arch``.
    rounds : int >= 1, default=3
        Augmentation rounds: the set doubles each round.
    lam : float > 0, default=0.3
        Augmentation step in budget units (channel standard deviations).
    base : Attack, default=LinfPGD()
        A white-box attack run on the substitute.
    train_config : models.TrainConfig or None
        Training of the substitute in each round (warm-started after the first).
    random_state : int >= 0 or None, default=0

    Attributes
    ----------
    substitute_ : EEGDecoder or SubstituteEnsemble
        The trained substitute.
    members_ : dict
        Architecture of each trained member -> its agreement with the victim on the held-out seed trials
        (``"agreement"`` only; otherwise empty).
    training_queries_ : int
        Oracle queries spent on labelling the seed and augmented trials.
    """

    threat_model = "black_box"
    nested = False

    def __init__(self, *, seed: EEGData, arch: str = "eegnet", members=MEMBERS, rounds: int = 3, lam: float = 0.3,
                 base: Attack | None = None, train_config=None, random_state: int = 0):
        from ..models import TrainConfig, model_names

        if not isinstance(seed, EEGData):
            raise TypeError(f"JacobianSubstitute seed must be an EEGData, got {type(seed).__name__}.")
        self.seed = seed
        self.arch = check_option("JacobianSubstitute arch", arch, (*model_names(), *SELECTIONS))
        if isinstance(members, str) or not members or len(set(members)) != len(members):
            raise ConfigError(f"JacobianSubstitute members must be distinct architecture names, got {members!r}; "
                              f"pass e.g. members=('eegnet', 'shallow').")
        self.members = tuple(check_option("JacobianSubstitute member", m, model_names()) for m in members)
        self.rounds = check_int("JacobianSubstitute", "rounds", rounds)
        self.lam = check_real("JacobianSubstitute", "lam", lam)
        self.base = check_base("JacobianSubstitute", base) if base is not None else LinfPGD()
        if train_config is not None and not isinstance(train_config, TrainConfig):
            raise ConfigTypeError(f"JacobianSubstitute train_config must be a models.TrainConfig or None, got "
                                  f"{type(train_config).__name__}.")
        self.train_config = train_config
        self.random_state = check_seed(random_state, name="JacobianSubstitute random_state")
        self.substitute_, self.members_ = None, {}

    @property
    def name(self):
        return f"substitute_{self.base.name}"

    @property
    def norm(self):
        return self.base.norm

    def __repr__(self):
        members = f", members={self.members}" if self.arch in SELECTIONS else ""
        return (f"{type(self).__name__}(arch={self.arch!r}{members}, rounds={self.rounds}, lam={self.lam}, "
                f"n_seed={self.seed.n_trials}, base={self.base!r})")

    def _member_names(self) -> list[str]:
        from ..models import min_n_times

        if self.arch not in SELECTIONS:
            return [self.arch]
        names = [m for m in self.members if min_n_times(m, self.seed.sfreq) <= self.seed.n_times]
        if not names:
            raise ConfigError(f"JacobianSubstitute arch={self.arch!r}: none of the members {self.members} accepts "
                              f"trials of {self.seed.n_times} samples at {self.seed.sfreq:g} Hz; pass longer epochs "
                              f"or other members.")
        return names

    def fit(self, victim: nn.Module, scale) -> "JacobianSubstitute":
        """Train the substitute against ``victim`` (microvolts in, logits out) through a counting oracle."""
        from ..models import TrainConfig, build_model, fit_model

        scale = np.asarray(scale, dtype=np.float32)
        oracle = QueryOracle(BudgetSpace(victim, scale), scores=False)
        config = self.train_config or TrainConfig(max_epochs=15, patience=None, show_progress=False)
        names = self._member_names()
        S_all = torch.from_numpy(self.seed.X / scale[None, :, None])
        held = np.zeros(len(S_all), dtype=bool)
        if self.arch == "agreement":  # a fifth of the seed, never trained on, scores each member
            n_held = max(1, len(S_all) // 5)
            if len(S_all) - n_held < 2:
                raise ConfigError(f"JacobianSubstitute arch='agreement' needs at least 3 seed trials, got "
                                  f"{len(S_all)}; pass more seed trials or a single architecture.")
            held[np.random.default_rng(self.random_state).choice(len(S_all), n_held, replace=False)] = True
        S = S_all[torch.from_numpy(~held)]

        def data_of(S, y):
            return EEGData(S.numpy() * scale[None, :, None], y.numpy(), self.seed.sfreq, self.seed.ch_names,
                           self.seed.classes)

        with eval_mode(victim):
            y = oracle.labels(S)
            models = {}
            for r in range(self.rounds + 1):
                data = data_of(S, y)
                for name in names:  # each member warm-starts from its previous round
                    models[name] = fit_model(models.get(name) or build_model(name, data, random_state=self.random_state),
                                             data, config)
                if r == self.rounds:
                    break
                guide = models[names[0]] if len(names) == 1 else SubstituteEnsemble(list(models.values()))
                S_new = S + self.lam * self._jacobian_sign(BudgetSpace(guide, scale), S, y)
                y = torch.cat([y, oracle.labels(S_new)])
                S = torch.cat([S, S_new])
            if self.arch == "agreement":
                S_held = S_all[torch.from_numpy(held)]
                y_held = oracle.labels(S_held).numpy()
                X_held = S_held.numpy() * scale[None, :, None]
                self.members_ = {n: float(np.mean(predict(m, X_held) == y_held)) for n, m in models.items()}
                best = max(names, key=lambda n: self.members_[n])  # ties: registry order
                model = models[best]
            elif self.arch == "ensemble":
                model = SubstituteEnsemble(list(models.values()))
            else:
                model = models[names[0]]
        self.substitute_ = model.eval()
        self.training_queries_ = oracle.n_queries
        return self

    @staticmethod
    def _jacobian_sign(module, S, y):
        with eval_mode(module):
            S = S.clone().requires_grad_(True)
            out = module(S).gather(1, y[:, None]).sum()
            (g,) = torch.autograd.grad(out, S)
        return g.sign()

    def _target(self, victim):
        if self.substitute_ is None:
            raise ConfigError("JacobianSubstitute must be fitted first: call attack.fit(victim, scale).")
        self._oracle, self._labels = QueryOracle(victim), None
        return BudgetSpace(self.substitute_, victim.scale.flatten().cpu().numpy()).to(victim.scale.device)

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        if self._labels is None or len(self._labels) != len(S):  # one label query per trial per call
            self._labels = self._oracle.labels(S)
        self._queries = np.ones(len(S))  # the label of each trial, queried once and reused for every budget
        y = self._labels  # the attacker's labels come from the victim
        with eval_mode(self.substitute_):
            return self.base._craft(target, S, y, epsilon=epsilon, bounds=bounds, rng=rng)

    def _info(self):
        return {"training_queries": self.training_queries_}
