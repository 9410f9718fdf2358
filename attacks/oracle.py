"""The counting oracle every black-box attack queries: the victim's labels or scores, with per-trial books."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data._checks import EEGRobustError

from ._params import check_bool, check_int


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
        self.batch_size = 512  # rows per forward pass of the victim (bounds memory; the rows are independent)

    def forward(self, S, rows=None):
        S = torch.as_tensor(S)
        if self.max_queries is not None and self.n_queries + len(S) > self.max_queries:
            raise QueryBudgetExceeded(f"query budget of {self.max_queries} exhausted")  # refused: not counted
        rows = self._rows(S, rows)
        self.n_queries += len(S)
        with torch.no_grad():  # in chunks: foolbox's gradient estimates send tens of thousands of rows at once
            out = torch.cat([self.victim(S[i:i + self.batch_size]) for i in range(0, len(S), self.batch_size)])
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
