"""The AutoAttack-style sanity checks on hand-made rows: each passes on good rows and fails on bad ones."""

from eegrobust.harness.checks import check_gradient_masking, check_minimal_vs_fixed, check_unbounded


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


def test_black_box_beating_white_box_is_flagged():
    rows = [row("apgd_ce", 0.1, 0.5), row("simba", 0.1, 0.2, threat="black_box")]
    assert not check_gradient_masking(rows)["passed"]
    assert check_gradient_masking([row("apgd_ce", 0.1, 0.2), row("simba", 0.1, 0.4, threat="black_box")])["passed"]
