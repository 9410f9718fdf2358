"""Black-box attacks: the attacker can only query the victim, and every query is counted.

Three attacks: a substitute trained through the oracle with Jacobian-based dataset augmentation, then a transfer
attack [1]_; HopSkipJump, decision-based (labels only) [2]_; and Square, score-based (class scores) [3]_.

References
----------
.. [1] Papernot et al., "Practical black-box attacks against machine learning", ACM AsiaCCS 2017.
.. [2] Chen, Jordan and Wainwright, "HopSkipJumpAttack: a query-efficient decision-based attack", IEEE S&P 2020.
.. [3] Andriushchenko et al., "Square attack: a query-efficient black-box adversarial attack via random
       search", ECCV 2020.
.. [4] Zhang and Wu, "On the vulnerability of CNN classifiers in EEG-based BCIs", IEEE TNSRE 27(5), 2019.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data._checks import ConfigError, EEGRobustError, check_option
from ..data.containers import EEGData

from ._foolbox import fb, run_foolbox
from ._params import ConfigTypeError, check_bool, check_int, check_real, check_seed
from .base import Attack, BudgetSpace, check_base, eval_mode
from .whitebox import LinfPGD


class QueryBudgetExceeded(EEGRobustError, RuntimeError):
    """An attack asked the oracle for more queries than its budget allows."""


class QueryOracle(nn.Module):
    """The victim as a black-box attacker sees it: labels (one-hot) or class probabilities, counted.

    With `track` the oracle also keeps per-trial books for the harness (never shown to the attack): queries per
    trial, and the adversarial query nearest to each clean trial (L-inf, budget space) with the query count at
    which each improvement happened. A query batch is attributed to trials through ``rows`` (the trial of each
    row); without ``rows`` a batch of exactly as many rows as tracked trials is row i = trial i (what foolbox's
    batched attacks do). A batch that cannot be attributed charges every tracked trial all its rows and credits
    none of them with an adversarial point: an upper bound on the queries, never an optimistic one. A query is
    credited as adversarial only when another class's logit beats the clean label's by more than ``margin_tol``
    (relative to the largest logit): decision-based searches end on the boundary, where float round-off can flip
    a label with the batch a point is evaluated in, and the template re-evaluates the points in other batches.

    Parameters
    ----------
    victim : torch.nn.Module
        The victim in budget space.
    scores : bool, default=False
        Return softmax probabilities (score-based attacks) instead of one-hot labels (decision-based).
    max_queries : int >= 0 or None, default=None
        Total queries allowed; one more raises `QueryBudgetExceeded`. None: unlimited.
    """

    def __init__(self, victim: nn.Module, *, scores: bool = False, max_queries: int | None = None):
        super().__init__()
        if not isinstance(victim, nn.Module):
            raise TypeError(f"QueryOracle victim must be a torch.nn.Module, got {type(victim).__name__}.")
        self.victim, self.scores = victim, check_bool("QueryOracle", "scores", scores)
        self.max_queries = None if max_queries is None else check_int("QueryOracle", "max_queries", max_queries,
                                                                        low=0)
        self.n_queries = 0
        self._clean = None
        self.margin_tol = 1e-4

    def forward(self, S, rows=None):
        S = torch.as_tensor(S)
        if self.max_queries is not None and self.n_queries + len(S) > self.max_queries:
            raise QueryBudgetExceeded(f"query budget of {self.max_queries} exhausted")  # refused: not counted
        rows = self._rows(S, rows)
        self.n_queries += len(S)
        with torch.no_grad():
            out = self.victim(S)
        if self._clean is not None:
            self._book(S, out, rows)
        if self.scores:
            return out.softmax(1)
        return nn.functional.one_hot(out.argmax(1), out.shape[1]).to(S.dtype)

    def labels(self, S, rows=None):
        return self(S, rows).argmax(1)

    # -- per-trial books --------------------------------------------------------------------------------------
    def track(self, S, *, max_per_trial: int | None = None):
        """Query the clean trials ``S`` once each, start the per-trial books, and return the oracle's output."""
        self._clean, self._y, self.rows = S, None, None
        n = len(S)
        self.trial_queries = np.zeros(n, dtype=np.int64)
        self.max_per_trial = max_per_trial
        self.best_dist = np.full(n, np.inf)
        self.best = S.clone()
        self._events: list[tuple] = []  # arrays: trial, its queries so far, its new nearest distance
        out = self(S, torch.arange(n, device=S.device))
        self._y = out.argmax(1)
        return out

    def _rows(self, S, rows):
        if self._clean is None:
            return None
        rows = self.rows if rows is None else rows
        if rows is None and len(S) == len(self._clean):
            rows = torch.arange(len(S), device=S.device)
        if rows is not None and len(rows) != len(S):
            rows = None
        if rows is None:
            cost = self.trial_queries + len(S)
        else:
            r = rows.cpu().numpy()
            cost = self.trial_queries[r] + np.bincount(r, minlength=len(self._clean))[r]
        if self.max_per_trial is not None and cost.max(initial=0) > self.max_per_trial:
            raise QueryBudgetExceeded(f"query budget of {self.max_per_trial} per trial exhausted")
        return rows

    def _book(self, S, logits, rows):
        if rows is None:  # not attributable: charge every trial every row, credit none
            self.trial_queries += len(S)
            return
        r = rows.cpu().numpy()
        np.add.at(self.trial_queries, r, 1)
        if self._y is None:  # the clean query itself
            return
        y = self._y[rows]
        gap = logits.scatter(1, y[:, None], -torch.inf).amax(1) - logits.gather(1, y[:, None]).squeeze(1)
        # credited only when clearly adversarial: a point on the boundary (where decision-based searches end) can
        # change label with the batch it is evaluated in, and the template re-evaluates it in another batch
        adv = (gap > self.margin_tol * (1 + logits.abs().amax(1))).cpu().numpy()
        if not adv.any():
            return
        dist = (S - self._clean[rows]).reshape(len(S), -1).abs().amax(1).double().cpu().numpy()
        q = self.trial_queries[r]
        if len(np.unique(r)) < len(r):  # a trial queried twice in one batch: book its rows one by one, in order
            q = q - np.bincount(r, minlength=len(self._clean))[r] + [np.sum(r[:j + 1] == r[j]) for j in range(len(r))]
            for j in np.flatnonzero(adv):
                self._improve(S[j:j + 1], r[j:j + 1], q[j:j + 1], dist[j:j + 1])
        else:
            self._improve(S[torch.from_numpy(adv).to(S.device)], r[adv], q[adv], dist[adv])

    def _improve(self, S, r, q, dist):
        better = dist < self.best_dist[r]
        if better.any():
            r, mask = r[better], torch.from_numpy(better).to(S.device)
            self.best[torch.from_numpy(r).to(S.device)] = S[mask]
            self.best_dist[r] = dist[better]
            self._events.append((r, q[better], dist[better]))

    def fooled(self):
        """Per trial: did some query get a label other than the clean one (clearly: see ``margin_tol``)?"""
        return np.isfinite(self.best_dist)

    def queries_at(self, budget: float, rtol: float = 1e-4) -> np.ndarray:
        """Per trial: queries up to the first adversarial query within L-inf ``budget``, else all it spent."""
        q = self.trial_queries.astype(float)
        if self._events:
            t, n, d = (np.concatenate(a) for a in zip(*self._events))
            ok = d <= budget * (1 + rtol)
            first = np.full(len(q), np.inf)
            np.minimum.at(first, t[ok], n[ok])
            q = np.where(np.isfinite(first), first, q)
        return q


class SquareAttack(Attack):
    """L-inf Square attack [3]_ adapted to EEG: random search over time windows of a random channel subset.

    The attacker sees class probabilities only. Windows cover a fraction ``p`` of the time axis that shrinks on
    the paper's schedule; a change is kept when it lowers the margin of the oracle's own label (or flips it). A
    trial stops at the first query whose label differs from the clean one, so its ``n_queries`` counts the
    queries up to and including that one (the whole budget if none did). The schedule is tied to
    ``max_queries``: a run with a larger budget searches differently from its first queries on.

    Parameters
    ----------
    max_queries : int >= 2, default=500
        Per-trial query budget (including the first query of the clean trial and the first perturbed one).
    p_init : float in (0, 1], default=1.0
        Initial fraction of the time axis a window covers (it halves on the paper's schedule). The paper's 0.05
        suits images; EEG decoders of slow potentials need long windows: on SCP1 EEGNet with 1000 queries,
        robust accuracy at epsilon 0.1 / 0.2 was 0.85 / 0.79 with 0.05, 0.62 / 0.33 with 0.5 and 0.54 / 0.21
        with 1.0 (100 test trials).
    """

    name = "square"
    threat_model = "black_box"
    nested = False  # each budget gets its own max_queries per trial

    def __init__(self, *, max_queries: int = 500, p_init: float = 1.0):
        self.max_queries = check_int("SquareAttack", "max_queries", max_queries, low=2,
                                     why=" queries per trial (the clean trial and the first perturbed one)")
        self.p_init = check_real("SquareAttack", "p_init", p_init, high=1.0)

    def _target(self, victim):
        return QueryOracle(victim, scores=True)

    def _p(self, it):
        frac = it / self.max_queries * 10000
        halvings = sum(frac > b for b in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))
        return self.p_init / 2 ** halvings

    def _run(self, oracle, S, labels, *, epsilon, bounds, rng):
        n, C, T = S.shape

        def margin(probs, y):
            top = probs.gather(1, y[:, None]).squeeze(1)
            other = probs.scatter(1, y[:, None], -1.0).amax(1)
            return top - other

        y = oracle.track(S, max_per_trial=self.max_queries).argmax(1)  # the attacker knows only the oracle's labels
        delta = epsilon * self._init(rng, n, C, T).to(S.device)
        probs = oracle((S + delta).clamp(bounds.low, bounds.high), torch.arange(n, device=S.device))
        m, fooled = margin(probs, y), probs.argmax(1) != y
        t = torch.arange(T, device=S.device)
        for it in range(self.max_queries - 2):
            active = (~fooled).nonzero().flatten()
            if len(active) == 0:
                break
            k = len(active)
            width = max(1, round(self._p(it) * T))
            n_ch = max(1, round(np.sqrt(self._p(it)) * C))
            start = torch.from_numpy(rng.integers(0, T - width + 1, size=k)).to(S.device)
            win = (t[None] >= start[:, None]) & (t[None] < start[:, None] + width)  # (k, T)
            ch_rank = torch.from_numpy(rng.random((k, C)).argsort(1)).to(S.device)
            chans = ch_rank < n_ch  # (k, C)
            mask = chans[:, :, None] & win[:, None, :]
            signs = torch.from_numpy(rng.choice([-1.0, 1.0], size=(k, C, 1)).astype(np.float32)).to(S.device)
            cand = torch.where(mask, epsilon * signs, delta[active])
            probs = oracle((S[active] + cand).clamp(bounds.low, bounds.high), active)
            m_new, flip = margin(probs, y[active]), probs.argmax(1) != y[active]
            better = (m_new < m[active]) | flip  # a flip is kept, and ends the trial's search
            delta[active[better]] = cand[better]
            m[active[better]] = m_new[better]
            fooled[active[better]] = flip[better]
        self._queries = oracle.trial_queries.astype(float)
        return (S + delta).clamp(bounds.low, bounds.high)

    @staticmethod
    def _init(rng, n, C, T):
        """Vertical stripes (the paper's L-inf start): one random sign per time sample, shared by all channels."""
        return torch.from_numpy(rng.choice([-1.0, 1.0], size=(n, 1, T)).astype(np.float32)).expand(n, C, T).clone()


class HopSkipJump(Attack):
    """Decision-based HopSkipJump [2]_ (foolbox), L-inf, minimal-norm, within a per-trial query budget.

    The attacker sees labels only. Each trial starts from the nearest trial of the batch that the oracle labels
    differently (one label query per trial). foolbox queries the whole batch at every step, so every query batch
    holds one row per trial and the oracle books each trial's queries exactly; the search runs until the oracle
    refuses the first query past ``max_queries`` per trial. The attack returns, per trial, the adversarial query
    nearest to the clean trial (never worse than foolbox's own result), and ``n_queries`` at each epsilon counts
    the queries up to the first adversarial query within that epsilon (all the trial's queries if none was).

    Parameters
    ----------
    max_queries : int >= 1, default=1000
        Per-trial query budget.
    gradient_evals : int >= 1, default=50
        Queries per trial to estimate the boundary's normal in each iteration.
    """

    name = "hopskipjump"
    threat_model = "black_box"
    minimal = True
    nested = False

    def __init__(self, *, max_queries: int = 1000, gradient_evals: int = 50):
        self.max_queries = check_int("HopSkipJump", "max_queries", max_queries, why=" queries per trial")
        self.gradient_evals = check_int("HopSkipJump", "gradient_evals", gradient_evals)

    def _target(self, victim):
        return QueryOracle(victim, scores=False)

    @staticmethod
    def _start(S, y):
        """The nearest other trial of the batch with another oracle label (no query: its label is known)."""
        flat = S.reshape(len(S), -1)
        dist = torch.cdist(flat, flat, p=float("inf"))
        dist[y[:, None] == y[None, :]] = float("inf")
        nearest = dist.argmin(1)
        ok = torch.isfinite(dist.min(1).values)
        return torch.where(ok[:, None, None], S[nearest], S), ok

    def _steps(self):
        # more iterations than any budget allows (each costs at least gradient_evals queries per trial): foolbox
        # runs until the oracle refuses the first query past max_queries, and the best query so far is kept
        return self.max_queries // self.gradient_evals + 1

    def _run(self, oracle, S, labels, *, epsilon, bounds, rng):
        y = oracle.track(S, max_per_trial=self.max_queries).argmax(1)
        S_start, ok = self._start(S, y)
        idx = ok.nonzero().flatten()
        steps = self._steps()
        if len(idx) and steps > 0:
            attack = fb.attacks.HopSkipJumpAttack(steps=steps, initial_gradient_eval_steps=self.gradient_evals,
                                                  max_gradient_eval_steps=self.gradient_evals, constraint="linf")
            oracle.rows = idx  # foolbox queries the whole batch every time: row j is trial idx[j]
            try:
                run_foolbox(attack, oracle, S[idx], y[idx], budget=None, bounds=bounds,
                            starting_points=((S_start[idx] - bounds.low) / bounds.span).clamp(0, 1))
            except QueryBudgetExceeded:  # the budget ends the search; the oracle kept the best query
                pass
            oracle.rows = None
        self._queries = oracle.trial_queries.astype(float)
        self._queries_at = oracle.queries_at
        return oracle.best


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
        Substitute architecture (a `models` registry name).
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
    substitute_ : EEGDecoder
        The trained substitute.
    training_queries_ : int
        Oracle queries spent on labelling the seed and augmented trials.
    """

    threat_model = "black_box"
    nested = False

    def __init__(self, *, seed: EEGData, arch: str = "eegnet", rounds: int = 3, lam: float = 0.3,
                 base: Attack | None = None, train_config=None, random_state: int = 0):
        from ..models import TrainConfig, model_names

        if not isinstance(seed, EEGData):
            raise TypeError(f"JacobianSubstitute seed must be an EEGData, got {type(seed).__name__}.")
        self.seed, self.arch = seed, check_option("JacobianSubstitute arch", arch, model_names())
        self.rounds = check_int("JacobianSubstitute", "rounds", rounds)
        self.lam = check_real("JacobianSubstitute", "lam", lam)
        self.base = check_base("JacobianSubstitute", base) if base is not None else LinfPGD()
        if train_config is not None and not isinstance(train_config, TrainConfig):
            raise ConfigTypeError(f"JacobianSubstitute train_config must be a models.TrainConfig or None, got "
                                  f"{type(train_config).__name__}.")
        self.train_config = train_config
        self.random_state = check_seed(random_state, name="JacobianSubstitute random_state")
        self.substitute_ = None

    @property
    def name(self):
        return f"substitute_{self.base.name}"

    @property
    def norm(self):
        return self.base.norm

    def __repr__(self):
        return (f"{type(self).__name__}(arch={self.arch!r}, rounds={self.rounds}, lam={self.lam}, "
                f"n_seed={self.seed.n_trials}, base={self.base!r})")

    def fit(self, victim: nn.Module, scale) -> "JacobianSubstitute":
        """Train the substitute against ``victim`` (microvolts in, logits out) through a counting oracle."""
        from ..models import TrainConfig, build_model, fit_model

        scale = np.asarray(scale, dtype=np.float32)
        oracle = QueryOracle(BudgetSpace(victim, scale), scores=False)
        config = self.train_config or TrainConfig(max_epochs=15, patience=None, show_progress=False)
        S = torch.from_numpy(self.seed.X / scale[None, :, None])
        with eval_mode(victim):
            y = oracle.labels(S)
            model = None
            for r in range(self.rounds + 1):
                data = EEGData(S.numpy() * scale[None, :, None], y.numpy(), self.seed.sfreq, self.seed.ch_names,
                               self.seed.classes)
                if model is None:
                    model = build_model(self.arch, data, random_state=self.random_state)
                model = fit_model(model, data, config)
                if r == self.rounds:
                    break
                S_new = S + self.lam * self._jacobian_sign(BudgetSpace(model, scale), S, y)
                y = torch.cat([y, oracle.labels(S_new)])
                S = torch.cat([S, S_new])
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
            return self.base._run(target, S, y, epsilon=epsilon, bounds=bounds, rng=rng)

    def _info(self):
        return {"training_queries": self.training_queries_}
