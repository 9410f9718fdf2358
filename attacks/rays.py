"""RayS, the hard-label ray-search attack [1]_ (L-inf, minimal-norm), with blocks along EEG channels and time.

RayS recasts the L-inf attack as a search over directions: for a sign vector ``d`` the radius
``g(d) = min {r : f(x + r d) != y}`` is the L-inf norm needed along the ray, and the attack looks for the sign
vector with the smallest radius. It flips the signs of one block of coordinates at a time, coarse blocks first
and then finer ones; a flipped candidate costs one query at the current best radius (it can only help if it is
adversarial there) and, only if it is, a binary search for its own radius. No gradient estimate is involved,
and each accepted flip lowers the radius.

References
----------
.. [1] Chen and Gu, "RayS: a ray searching method for hard-label adversarial attack", KDD 2020.
"""

from __future__ import annotations

import numpy as np
import torch

from ._params import check_int, check_real
from .base import Attack
from .oracle import QueryOracle


def eeg_blocks(n_chans: int, n_times: int, level: int) -> np.ndarray:
    """Blocks of one level as rows ``(chan_lo, chan_hi, t_lo, t_hi)``: level 0 is the whole trial, level ``l >= 1``
    each channel cut into ``2 ** (l - 1)`` time segments (so a flipped block is a slow square wave at first)."""
    if level == 0:
        return np.array([[0, n_chans, 0, n_times]])
    edges = np.linspace(0, n_times, 2 ** (level - 1) + 1).round().astype(int)
    seg = np.stack([edges[:-1], edges[1:]], 1)
    seg = seg[seg[:, 1] > seg[:, 0]]
    c = np.repeat(np.arange(n_chans), len(seg))
    return np.column_stack([c, c + 1, np.tile(seg, (n_chans, 1))])


class RayS(Attack):
    """RayS [1]_ for EEG: decision-based (labels only), L-inf, minimal-norm, per-trial query budget.

    Each trial starts from the sign vector of ones (a shift of every channel by the radius) and visits the
    blocks of level 0 (the whole trial), then level 1 (each channel), then each channel cut into 2, 4, 8, ...
    time segments, in a random order within each level (seeded by ``random_state``), back to level 0 after
    single samples. The first radius is checked at the edge of the search box; a trial that is not adversarial
    there keeps checking flips at that radius. Binary searches stop when the bracket is below ``rtol`` of its
    upper end, which is always a queried adversarial point. The attack returns each trial's adversarial query
    nearest to it (L-inf), and ``n_queries`` at each epsilon counts the queries up to the first adversarial
    query within that epsilon (all ``max_queries`` if none was): one run serves every epsilon.

    Parameters
    ----------
    max_queries : int >= 2, default=1000
        Per-trial query budget.
    rtol : float in (0, 1), default=0.01
        Relative precision of the binary search on the radius.

    References
    ----------
    .. [1] Chen and Gu, "RayS: a ray searching method for hard-label adversarial attack", KDD 2020.
    """

    name = "rays"
    threat_model = "black_box"
    minimal = True
    nested = False

    def __init__(self, *, max_queries: int = 1000, rtol: float = 0.01):
        self.max_queries = check_int("RayS", "max_queries", max_queries, low=2,
                                     why=" (the clean trial's label and at least one ray); use e.g. 1000")
        self.rtol = check_real("RayS", "rtol", rtol, high=1.0, high_open=True)

    def _target(self, victim):
        return QueryOracle(victim, scores=False)

    def _run(self, oracle, S, labels, *, epsilon, bounds, rng):
        n, C, T = S.shape
        dev = S.device
        y = oracle.track(S, max_per_trial=self.max_queries).argmax(1)
        r_max = float(bounds.span)  # every coordinate clipped to the box: the farthest point along any ray
        seeds = rng.integers(2**63, size=n)
        level, passes = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        blocks = [eeg_blocks(C, T, 0) for _ in range(n)]
        pos = np.zeros(n, dtype=np.int64)
        d = torch.ones_like(S)
        cand = d.clone()
        r_best = np.full(n, np.inf)
        lo, hi = np.zeros(n), np.zeros(n)
        search = np.zeros(n, dtype=bool)  # binary search of the candidate's radius in progress
        first = np.ones(n, dtype=bool)  # the first query checks d itself, unflipped
        c_ar, t_ar = torch.arange(C, device=dev), torch.arange(T, device=dev)
        while True:
            idx = np.flatnonzero(oracle.trial_queries < self.max_queries)
            if len(idx) == 0:
                break
            chk = idx[~search[idx] & ~first[idx]]
            first[idx] = False  # the first query of a trial checks d itself (cand is d)
            if len(chk):  # next block of each checking trial: flip it in a copy of d
                bt = torch.from_numpy(np.stack([blocks[i][pos[i]] for i in chk])).to(dev)
                ch = (c_ar[None] >= bt[:, :1]) & (c_ar[None] < bt[:, 1:2])
                tm = (t_ar[None] >= bt[:, 2:3]) & (t_ar[None] < bt[:, 3:4])
                ci = torch.from_numpy(chk).to(dev)
                cand[ci] = torch.where(ch[:, :, None] & tm[:, None, :], -d[ci], d[ci])
                self._advance(chk, pos, level, passes, blocks, seeds, C, T)
            r = np.where(search, (lo + hi) / 2, np.minimum(r_best, r_max))[idx]
            ti = torch.from_numpy(idx).to(dev)
            rt = torch.from_numpy(r).to(dev, torch.float32)[:, None, None]
            adv = (oracle.labels((S[ti] + rt * cand[ti]).clamp(bounds.low, bounds.high), ti) != y[ti]).cpu().numpy()
            s, c = search[idx], ~search[idx]
            hi[idx[s & adv]] = r[s & adv]
            lo[idx[s & ~adv]] = r[s & ~adv]
            start = idx[c & adv]  # the candidate beats the best radius (or is the first adversarial ray)
            lo[start], hi[start], search[start] = 0.0, r[c & adv], True
            done = idx[search[idx] & (hi[idx] - lo[idx] <= self.rtol * hi[idx])]
            if len(done):
                di = torch.from_numpy(done).to(dev)
                d[di] = cand[di]
                r_best[done], search[done] = hi[done], False
        self._queries = oracle.trial_queries.astype(float)
        self._queries_at = oracle.queries_at
        return oracle.best

    @staticmethod
    def _advance(trials, pos, level, passes, blocks, seeds, C, T):
        """Move each trial to its next block; a new level draws a new block order (from the trial's seed)."""
        pos[trials] += 1
        for i in trials[pos[trials] >= np.array([len(blocks[i]) for i in trials])]:
            level[i] += 1
            if 2 ** (level[i] - 1) > T:  # past single samples: start over at the whole trial
                level[i], passes[i] = 0, passes[i] + 1
            b = eeg_blocks(C, T, int(level[i]))
            blocks[i] = b[np.random.default_rng([int(seeds[i]), int(passes[i]), int(level[i])]).permutation(len(b))]
            pos[i] = 0
