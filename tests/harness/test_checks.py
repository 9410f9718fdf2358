"""The AutoAttack-style sanity checks on hand-made rows: each passes on good rows and fails on bad ones."""

import pytest

from eegrobust.harness.checks import (check_gradient_masking, check_l2_budget, check_minimal_vs_fixed,
                                      check_minimal_vs_fixed_l2, check_unbounded)


def row(attack, eps, adv, *, threat="white_box", norm="linf", minimal=False, never=None, clean=0.9, n=100):
    return {"model": "m", "attack": attack, "epsilon": eps, "adv_rca": adv, "clean_rca": clean, "drop": clean - adv,
            "threat_model": threat, "norm": norm, "n_trials": n, "seed": 0, "dataset": "d", "subject": "1",
            "session": "", "fold": "official", "arm": "none", "train_seed": 0,
            "median_min_norm": 0.1 if minimal else None, "info": {} if never is None else {"never_fooled": never}}


def test_unbounded_attack_must_break_every_trial():
    assert check_unbounded([row("fmn", 0.1, 0.2, minimal=True, never=0)])["passed"]
    bad = check_unbounded([row("fmn", 0.1, 0.2, minimal=True, never=12)])
    assert not bad["passed"] and "12 of 90 trials never flipped" in bad["detail"]


def test_minimal_norm_and_fixed_budget_must_agree():
    ok = [row("apgd_ce", 0.1, 0.20), row("fmn", 0.1, 0.21, minimal=True)]
    assert check_minimal_vs_fixed(ok)["passed"]
    weak = [row("apgd_ce", 0.1, 0.40), row("fmn", 0.1, 0.20, minimal=True)]
    res = check_minimal_vs_fixed(weak)
    assert not res["passed"] and "fixed-budget 0.400 > minimal-norm 0.200" in res["detail"]
    l2 = [row("apgd_ce", 0.1, 0.40), row("deepfool", 0.1, 0.05, norm="l2", minimal=True)]
    assert check_minimal_vs_fixed(l2)["passed"]  # an L2 minimal attack is never compared with L-inf


def test_l2_minimal_norm_and_fixed_budget_must_agree():
    """The review's case: L2 PGD left 0.41 where C&W left 0.32 at the same L2 radius; L-inf rows never enter."""
    weak = [row("l2_pgd", 0.3, 0.41, norm="l2"), row("cw_l2", 0.3, 0.32, norm="l2", minimal=True),
            row("apgd_ce", 0.3, 0.90), row("fmn", 0.3, 0.10, minimal=True)]
    res = check_minimal_vs_fixed_l2(weak)
    assert not res["passed"] and res["name"].endswith("(L2)")
    assert "fixed-budget 0.410 > minimal-norm 0.320" in res["detail"]
    ok = [row("l2_apgd_ce", 0.3, 0.33, norm="l2"), row("cw_l2", 0.3, 0.32, norm="l2", minimal=True)]
    assert check_minimal_vs_fixed_l2(ok)["passed"]
    assert "no minimal-norm L2 attack" in check_minimal_vs_fixed_l2([row("deepfool", 0.3, 0.1, norm="l2",
                                                                         minimal=True)])["detail"]


def test_black_box_beating_white_box_is_flagged():
    rows = [row("apgd_ce", 0.1, 0.5), row("simba", 0.1, 0.2, threat="black_box")]
    assert not check_gradient_masking(rows)["passed"]
    assert check_gradient_masking([row("apgd_ce", 0.1, 0.2), row("simba", 0.1, 0.4, threat="black_box")])["passed"]


def test_l2_perturbation_over_its_radius_fails_the_check_and_voids_a_gate():
    from types import SimpleNamespace

    from eegrobust.harness.audit import no_verdict_reason
    from eegrobust.harness.checks import run_checks

    within, over = row("l2_pgd", 0.1, 0.3, norm="l2"), row("l2_pgd", 0.2, 0.1, norm="l2")
    within["l2_rel"], over["l2_rel"] = 0.1, 0.25
    ok = check_l2_budget([within])
    assert ok["passed"] and "1 L2 rows within budget" in ok["detail"]
    bad = check_l2_budget([within, over])
    assert not bad["passed"] and "l2_pgd eps=0.2: 0.25" in bad["detail"]
    old = check_l2_budget([row("l2_pgd", 0.1, 0.3, norm="l2")])  # a row from before l2_rel: said, not failed
    assert old["passed"] and "1 rows from before l2_rel not checked" in old["detail"]
    checks = run_checks([within, over], on_fail="ignore")
    reason = no_verdict_reason(SimpleNamespace(checks=checks, rows=[within, over], provenance={}), 0.5)
    assert reason is not None and "no L2 perturbation exceeds its budget" in reason


def test_l2_rel_of_a_real_l2_attack_is_within_its_radius_and_uses_it():
    """L2 PGD on a toy model: the largest per-trial L2 norm in budget units, over sqrt(C * T), is at most epsilon
    (the radius `l2_budget`), close to it (PGD ends on the sphere), and the number perturbation_stats reports."""
    import numpy as np

    from eegrobust.attacks.budget import channel_scale
    from eegrobust.attacks.whitebox import L2PGD
    from eegrobust.data import epochs_to_data, make_synthetic_epochs
    from eegrobust.harness.metrics import perturbation_stats
    from eegrobust.models import TrainConfig, build_model, fit_model

    data = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=2.0, random_state=0))
    model = fit_model(build_model("toy", data, random_state=0), data,
                      TrainConfig(max_epochs=3, patience=None, show_progress=False)).eval()
    scale = channel_scale(data.X)
    (out,) = L2PGD(steps=5)(model, data.X, data.y, epsilons=(0.05,), scale=scale, random_state=0)
    stats = perturbation_stats(data.X, out.X_adv, scale)
    rel = (out.X_adv - data.X).astype(np.float64) / scale[None, :, None]
    norms = np.sqrt((rel ** 2).reshape(len(rel), -1).sum(axis=1)) / np.sqrt(rel[0].size)
    assert stats["l2_rel"] == pytest.approx(norms.max(), rel=1e-9)
    assert 0.9 * 0.05 < stats["l2_rel"] <= 0.05 * (1 + 1e-3)
