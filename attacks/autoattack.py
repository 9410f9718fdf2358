"""AutoAttack-style ensemble: parameter-free attacks run in turn, each on the trials the previous ones left robust.

A trial is robust at a budget only if every attack of the ensemble failed on it, so the ensemble's accuracy is the
per-trial worst case over its attacks [1]_. The ensemble here follows AutoAttack's "standard" version in L-inf:
APGD-CE, APGD-T (targeted DLR; for two classes the margin loss, see `attacks.apgd`), a minimal-norm white-box
attack (FAB-T in AutoAttack; here FMN, `attacks.fmn`, when it is registered) and the score-based Square attack
with 5000 queries; "fast" keeps the two APGD runs; "rand" is AutoAttack's version for randomised models: APGD-CE
and APGD-DLR with EOT over 20 forward passes. Each output's ``info["broken_by"]`` counts, per attack, the trials
it was first to break at that budget.

References
----------
.. [1] Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
       attacks", ICML 2020.
"""

from __future__ import annotations

import torch

from ..data._checks import check_option
from ._params import check_int
from .apgd import APGDCE, APGDDLR
from .base import Attack, predict_labels

VERSIONS = ("standard", "fast", "rand")


class AutoAttack(Attack):
    """The ensemble; parameters as in AutoAttack.

    Parameters
    ----------
    version : {"standard", "fast", "rand"}, default="standard"
    steps : int >= 1, default=100
        Iterations of each APGD run.
    square_queries : int >= 2, default=5000
        Per-trial query budget of Square ("standard" only).
    eot_iter : int >= 1 or None, default=None
        Forward passes averaged per APGD gradient; None: 20 for "rand", else 1.
    """

    name = "autoattack"
    norm = "linf"

    def __init__(self, *, version="standard", steps=100, square_queries=5000, eot_iter=None):
        self.version = check_option("AutoAttack version", version, VERSIONS)
        self.steps = check_int("AutoAttack", "steps", steps)
        self.square_queries = check_int("AutoAttack", "square_queries", square_queries, low=2)
        self.eot_iter = (20 if version == "rand" else 1) if eot_iter is None else check_int(
            "AutoAttack", "eot_iter", eot_iter)
        self._broken: dict = {}

    def components(self) -> list:
        """The attacks in the order they run."""
        apgd = {"steps": self.steps, "eot_iter": self.eot_iter}
        out = [APGDCE(**apgd), APGDDLR(**apgd)]
        if self.version == "standard":
            from .registry import ATTACKS

            if "fmn" in ATTACKS:
                out.append(ATTACKS["fmn"]())
            from .blackbox import SquareAttack

            out.append(SquareAttack(max_queries=self.square_queries))
        return out

    def _run(self, target, S, labels, *, epsilon, bounds, rng):
        best = S.clone()
        robust = torch.ones(len(S), dtype=torch.bool, device=S.device)
        self._broken = {}
        for attack in self.components():
            idx = robust.nonzero().flatten()
            if len(idx) == 0:
                break
            S_adv = self._component(attack, target, S[idx], labels[idx], epsilon, bounds, rng)
            S_adv = self._project(S[idx], S_adv, epsilon, bounds)
            fooled = predict_labels(target, S_adv) != labels[idx]
            best[idx[fooled]] = S_adv[fooled]
            robust[idx[fooled]] = False
            self._broken[attack.name] = int(fooled.sum())
        return best

    @staticmethod
    def _component(attack, target, S, labels, epsilon, bounds, rng):
        if attack.threat_model == "black_box":  # Square: the victim seen through its scores only
            from .oracle import QueryOracle

            return attack._run(QueryOracle(target, scores=True), S, labels, epsilon=epsilon, bounds=bounds, rng=rng)
        if attack.minimal:  # minimal-norm: keep the trials whose smallest perturbation fits the budget
            S_adv = torch.as_tensor(attack._run(target, S, labels, epsilon=None, bounds=bounds, rng=rng))
            fits = (S_adv - S).reshape(len(S), -1).abs().amax(1) <= epsilon * (1 + 1e-4)
            return torch.where(fits[:, None, None], S_adv, S)
        return attack._run(target, S, labels, epsilon=epsilon, bounds=bounds, rng=rng)

    def _info(self):
        info, self._broken = {"version": self.version, "broken_by": dict(self._broken)}, {}
        return info
