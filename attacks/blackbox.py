"""Query attacks on the victim's outputs: HopSkipJump, decision-based (labels only) [1]_, and Square,
score-based (class scores) [2]_. The counting oracle is in `oracle`, the Papernot substitute in `substitute`, SimBA
and RayS in their own modules.

References
----------
.. [1] Chen, Jordan and Wainwright, "HopSkipJumpAttack: a query-efficient decision-based attack", IEEE S&P 2020.
.. [2] Andriushchenko et al., "Square attack: a query-efficient black-box adversarial attack via random
       search", ECCV 2020.
"""

from __future__ import annotations

import numpy as np
import torch

from ._foolbox import fb, run_foolbox
from ._params import check_int, check_real
from .base import Attack
from .oracle import QueryBudgetExceeded, QueryOracle
from .substitute import JacobianSubstitute, SubstituteEnsemble

__all__ = ["HopSkipJump", "JacobianSubstitute", "QueryBudgetExceeded", "QueryOracle", "SquareAttack",
           "SubstituteEnsemble"]


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
    chunk : int >= 1, default=32
        Trials per foolbox run (foolbox holds ``gradient_evals`` noisy copies of each trial of a run in memory,
        several times over). Trials are searched independently; the chunk changes only which random numbers a
        trial draws.
    """

    name = "hopskipjump"
    threat_model = "black_box"
    minimal = True
    nested = False

    def __init__(self, *, max_queries: int = 1000, gradient_evals: int = 50, chunk: int = 32):
        self.max_queries = check_int("HopSkipJump", "max_queries", max_queries, why=" queries per trial")
        self.gradient_evals = check_int("HopSkipJump", "gradient_evals", gradient_evals)
        self.chunk = check_int("HopSkipJump", "chunk", chunk, why=" trials per foolbox run")

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
            # foolbox draws the gradient-estimation noise of a whole batch at once (gradient_evals copies of every
            # trial, several tensors of that size): trials run ``chunk`` at a time to bound memory
            for part in torch.split(idx, self.chunk):
                oracle.rows = part  # foolbox queries the whole batch every time: row j is trial part[j]
                try:
                    run_foolbox(attack, oracle, S[part], y[part], budget=None, bounds=bounds,
                                starting_points=((S_start[part] - bounds.low) / bounds.span).clamp(0, 1))
                except QueryBudgetExceeded:  # the budget ends the search; the oracle kept the best query
                    pass
            oracle.rows = None
        self._queries = oracle.trial_queries.astype(float)
        self._queries_at = oracle.queries_at
        return oracle.best
