"""Budgets hold exactly, in float64 on the float32 microvolts the attacks return: no sample one float32 step over.

The attacks project in budget space; the way back to microvolts used to leave samples up to ~1e-4 (relative) over
``eps * scale``, which a reviewer checking with zero tolerance would flag. Trials far from 0 uV make float32 steps
large, so the offset below makes the rounding visible."""

import numpy as np
import pytest

from eegrobust.attacks import channel_scale, make_attack
from eegrobust.attacks.budget import l2_budget

from .conftest import FAST_PARAMS


@pytest.mark.parametrize("name", ["fgsm", "linf_pgd", "l2_pgd", "deepfool", "noise", "apgd_ce"])
def test_outputs_are_inside_their_budget_exactly(trained_toy, attack_eval, name):
    X = attack_eval.X + np.float32(3000.0)  # a DC offset: float32 steps of 2.4e-4 uV near 3000 uV
    y = attack_eval.y
    scale = channel_scale(X)
    attack = make_attack(name, **FAST_PARAMS.get(name, {}))
    eps_grid = [0.0, 0.013, 0.1, 0.3]
    for out in attack(trained_toy, X, y, epsilons=eps_grid, scale=scale, random_state=0):
        D = out.X_adv.astype(np.float64) - X.astype(np.float64)
        s = scale.astype(np.float64)[None, :, None]
        if attack.norm == "linf":
            assert np.all(np.abs(D) <= out.epsilon * s), (name, out.epsilon, float((np.abs(D) / s).max()))
        else:
            norms = np.sqrt(((D / s) ** 2).reshape(len(D), -1).sum(1))
            assert np.all(norms <= l2_budget(out.epsilon, X.shape[1], X.shape[2])), (name, out.epsilon)
        if out.epsilon == 0:
            assert np.array_equal(out.X_adv, X)
