"""SimBA, the simple score-based black-box attack [1]_, in a low-frequency cosine basis along time (L-inf).

SimBA walks through an orthogonal basis in random order and, for each direction ``q``, tries ``delta + a q`` then
``delta - a q``, keeping the first that lowers the probability of the label. Guo et al. found the low-frequency
DCT basis (SimBA-DCT) far more query-efficient on images than the pixel basis; EEG is similar and more so:
a decoder of slow cortical potentials (SCP) [2]_ reads shifts and drifts below a few hertz, to which
high-frequency perturbations (random signs per sample) are nearly invisible. The basis here is the DCT-II along
time of each channel, lowest frequencies first: direction ``(c, k)`` adds ``cos(pi * k * (t + 1/2) / n_times)`` to
channel ``c``. The cosines diagonalize a stationary signal's covariance in the limit, so a few of them carry
most of the power of slow EEG, and each is a whole-trial waveform rather than a window (as a wavelet atom would
be): the SCP class is a property of the whole trial. On SCP1 EEGNet the white-box loss gradient has 39 % of its
energy at k = 1 and 76 % at k < 4 (below 0.5 Hz), against 1 % at k = 0 (the trial mean).

For the L-inf ball the attack keeps each trial's coefficients ``z`` and perturbs by the clipped waveform
``clip(sum_k z_ck cos_k, -epsilon, epsilon)``: a step changes one coefficient, and as clipping applies to the
waveform and not to ``z``, a later step can bring saturated samples back (clipping ``delta`` itself after each
step made early steps irreversible and left 0.55 robust accuracy instead of 0.49 at epsilon 0.1, 1000 queries).

References
----------
.. [1] Guo, Gardner, You, Wilson and Weinberger, "Simple black-box adversarial attacks", ICML 2019.
.. [2] Birbaumer et al., "The thought translation device (TTD) for completely paralyzed patients", IEEE Trans.
       Rehabil. Eng. 8(2), 2000 (slow cortical potentials).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._params import check_int, check_real
from .base import Attack
from .oracle import QueryOracle


def dct_atoms(n_times: int, n_freqs: int) -> torch.Tensor:
    """DCT-II atoms ``cos(pi * k * (t + 1/2) / n_times)`` for k < ``n_freqs``, peak 1, shape (n_freqs, n_times)."""
    t = torch.arange(n_times, dtype=torch.float64) + 0.5
    k = torch.arange(n_freqs, dtype=torch.float64)[:, None]
    return torch.cos(math.pi * k * t / n_times).float()


class SimBA(Attack):
    """SimBA-DCT [1]_ for EEG: L-inf, score-based, low temporal frequencies first.

    The attacker sees class probabilities only. Directions are (channel, DCT frequency) pairs over the lowest
    ``freq_ratio`` of the frequencies, visited band by band (``band`` consecutive frequencies, lowest first) in a
    random order within each band, one order per trial drawn from its own seed (so a trial's search does not
    depend on the other trials or on ``max_queries``). A coefficient step of ``rel_stepsize * epsilon`` (the
    cosine's peak) is tried with the sign ``+`` then ``-``; the waveform is clipped into the epsilon ball and the
    bounds, and a step that clipping leaves without effect costs no query. A step is kept if it lowers the
    probability of the oracle's clean label (or changes the label); a trial stops at the first query whose label
    differs from the clean one, so its ``n_queries`` counts the queries up to and including that one. After
    every direction a trial walks the basis again in a new order, and stops early when a whole pass kept
    nothing (then ``n_queries`` is what it spent).

    Parameters
    ----------
    max_queries : int >= 2, default=1000
        Per-trial query budget, the query of the clean trial included.
    freq_ratio : float in (0, 1], default=0.02
        Fraction of the DCT frequencies searched, lowest first (0.02 of 896 samples at 256 Hz: below 2.6 Hz).
    rel_stepsize : float > 0, default=1.0
        Step, relative to epsilon (the peak of the added cosine).
    band : int >= 1, default=4
        Frequencies per group whose order is shuffled (1: strictly lowest frequency first).

    References
    ----------
    .. [1] Guo et al., "Simple black-box adversarial attacks", ICML 2019.
    """

    name = "simba"
    threat_model = "black_box"
    nested = False  # each budget gets its own max_queries per trial

    def __init__(self, *, max_queries: int = 1000, freq_ratio: float = 0.02, rel_stepsize: float = 1.0,
                 band: int = 4):
        self.max_queries = check_int("SimBA", "max_queries", max_queries, low=2,
                                     why=" (the clean trial's query and at least one step); use e.g. 1000")
        self.freq_ratio = check_real("SimBA", "freq_ratio", freq_ratio, high=1.0)
        self.rel_stepsize = check_real("SimBA", "rel_stepsize", rel_stepsize)
        self.band = check_int("SimBA", "band", band)

    def _target(self, victim):
        return QueryOracle(victim, scores=True)

    def _order(self, seed: int, n_chans: int, n_freqs: int, n_pass: int) -> np.ndarray:
        """One trial's direction order in one pass: (channel, freq) ids, frequency bands in order, shuffled within."""
        r = np.random.default_rng([seed, n_pass])
        k = np.tile(np.arange(n_freqs), n_chans)
        key = (k // self.band) + r.random(len(k))
        return np.argsort(key, kind="stable")

    def _run(self, oracle, S, labels, *, epsilon, bounds, rng):
        n, C, T = S.shape
        dev = S.device
        K = max(1, min(T, round(self.freq_ratio * T)))
        atoms, step = dct_atoms(T, K).to(dev), self.rel_stepsize * epsilon
        seeds = rng.integers(2**63, size=n)
        orders = [self._order(int(s), C, K, 0) for s in seeds]
        pos, passes = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        kept_in_pass = np.zeros(n, dtype=bool)
        probs = oracle.track(S, max_per_trial=self.max_queries)
        y = probs.argmax(1)
        p_y = probs.gather(1, y[:, None]).squeeze(1)
        z = torch.zeros(n, C, K, device=dev)  # the trial's DCT coefficients; delta is their waveform, clipped
        delta = torch.zeros_like(S)
        active = np.ones(n, dtype=bool)
        while True:
            active &= oracle.trial_queries < self.max_queries
            idx = np.flatnonzero(active)
            if len(idx) == 0:
                break
            dirs = np.array([orders[i][pos[i]] for i in idx])
            pos[idx] += 1
            chans, freqs = torch.from_numpy(dirs // K).to(dev), torch.from_numpy(dirs % K).to(dev)
            open_ = np.ones(len(idx), dtype=bool)  # not yet improved in this direction
            for sign in (1.0, -1.0):
                j = np.flatnonzero(open_ & (oracle.trial_queries[idx] < self.max_queries))
                if len(j) == 0:
                    break
                t_idx = torch.from_numpy(idx[j]).to(dev)
                zc = z[t_idx].clone()
                zc[torch.arange(len(j), device=dev), chans[j], freqs[j]] += sign * step
                cand = (S[t_idx] + (zc @ atoms).clamp(-epsilon, epsilon)).clamp(bounds.low, bounds.high) - S[t_idx]
                moved = (cand != delta[t_idx]).flatten(1).any(1)
                if not moved.any():
                    continue
                m = moved.nonzero().flatten()
                q_idx = t_idx[m]
                out = oracle(S[q_idx] + cand[m], q_idx)
                p_new, flip = out.gather(1, y[q_idx, None]).squeeze(1), out.argmax(1) != y[q_idx]
                keep = (p_new < p_y[q_idx]) | flip
                k_idx = q_idx[keep]
                z[k_idx], delta[k_idx], p_y[k_idx] = zc[m][keep], cand[m][keep], p_new[keep]
                kept_in_pass[k_idx.cpu().numpy()] = True
                active[q_idx[flip].cpu().numpy()] = False  # fooled: stop at this query
                open_[j[m[keep].cpu().numpy()]] = False
            done = idx[pos[idx] == len(orders[0])]
            for i in done:  # end of a pass: stop if it kept nothing, else walk the basis again in a new order
                if not kept_in_pass[i]:
                    active[i] = False
                passes[i] += 1
                orders[i], pos[i], kept_in_pass[i] = self._order(int(seeds[i]), C, K, int(passes[i])), 0, False
        self._queries = oracle.trial_queries.astype(float)
        return S + delta
