"""The audit's verdict reads the per-trial worst case over a threat model's attacks of one norm, not only single
attacks: two attacks that each fool a different trial drop accuracy further together than either alone."""

import pytest

from eegrobust.harness.audit import verdict_line, worst_case_table, worst_cases, worst_drop
from eegrobust.harness.report import verdict
from eegrobust.harness.results import COLUMNS, SuiteResult

UNIT = {"dataset": "d", "subject": "1", "session": "", "fold": "audit", "protocol": "given", "model": "m",
        "arm": "none", "train_seed": 0, "attack_seed": 0}
Y = [0, 0, 1, 1]


def _result(fooled, *, norms=None, threats=None):
    """Four trials, all correct clean; ``fooled[attack]`` = the trials that attack fools at epsilon 0.1."""
    rows, outcomes = [], []
    for attack, bad in fooled.items():
        norm = (norms or {}).get(attack, "linf")
        threat = (threats or {}).get(attack, "white_box")
        adv = [1 - y if i in bad else y for i, y in enumerate(Y)]
        for eps, pred in ((0.0, Y), (0.1, adv)):
            acc = sum(p == y for p, y in zip(pred, Y)) / len(Y)
            rows.append({**dict.fromkeys(COLUMNS), **UNIT, "seed": 0, "n_trials": 4, "clean_bca": 1.0,
                         "adv_bca": acc, "threat_model": threat,
                         "attack": attack, "substitute": "", "norm": norm,
                         "epsilon": eps, "clean_rca": 1.0, "adv_rca": acc, "drop": 1.0 - acc})
        outcomes.append({**UNIT, "threat_model": threat, "attack": attack, "substitute": "", "norm": norm,
                         "trial": [0, 1, 2, 3], "y": Y, "clean_pred": Y,
                         "adv_pred": {"0.0": Y, "0.1": adv}})
    return SuiteResult(rows=rows, outcomes=outcomes)


def test_two_attacks_fooling_different_trials_fail_a_gate_neither_fails_alone():
    result = _result({"fgsm": {0}, "linf_pgd": {1}})
    drop, what = worst_drop(result)
    assert drop == pytest.approx(0.5)
    assert "worst case per trial" in what and "fgsm, linf_pgd" in what and "4 trials" in what
    assert verdict_line(result, 0.3).startswith("verdict: FAIL (max drop 0.3); worst case per trial m white_box")
    assert worst_cases(result)[0]["adv_rca"] == pytest.approx(0.5)
    table = worst_case_table(worst_cases(result))
    assert "fgsm,linf_pgd" in table and "0.500" in table
    # the report's verdict line says the same
    assert verdict(result) == ("worst L∞: m white_box per-trial worst case over fgsm, linf_pgd eps=0.1: accuracy "
                               "1.000 -> 0.500 (drop 0.500)")


def test_a_single_cell_is_named_when_the_worst_case_drops_no_further():
    result = _result({"fgsm": {0}, "linf_pgd": {0, 1}})
    drop, what = worst_drop(result)
    assert drop == pytest.approx(0.5) and what.startswith("worst cell m white_box linf_pgd eps=0.1")
    assert verdict_line(result, 0.5).startswith("verdict: PASS")
    assert verdict(result).startswith("worst L∞: m white_box linf_pgd eps=0.1")


def test_norms_and_threat_models_are_never_pooled():
    result = _result({"linf_pgd": {0}, "l2_pgd": {1}, "square": {2}},
                     norms={"l2_pgd": "l2"}, threats={"square": "black_box"})
    drop, what = worst_drop(result)
    assert drop == pytest.approx(0.25) and what.startswith("worst cell")
    assert {(w["threat_model"], w["norm"], w["n_attacks"]) for w in worst_cases(result)} == {
        ("white_box", "linf", 1), ("white_box", "l2", 1), ("black_box", "linf", 1)}
    assert worst_case_table(worst_cases(result)) == ""


def test_results_without_outcomes_fall_back_to_single_cells():
    result = _result({"fgsm": {0}, "linf_pgd": {1}})
    result.outcomes = []
    assert worst_cases(result) == [] and worst_drop(result)[0] == pytest.approx(0.25)
    assert verdict_line(SuiteResult(rows=[]), 0.1) == "verdict: no attack ran"


# -- results files edited apart from what they say -------------------------------------------------------------
@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d["rows"][1].update(drop=0.9), "has drop 0.9, but clean_rca - adv_rca is 0.25"),
    (lambda d: d["rows"].append(dict(d["rows"][1])), "are the same cell"),
    (lambda d: d["rows"][1].update(epsilon=float("nan")), "not a finite budget >= 0"),
    (lambda d: d["rows"][1].update(epsilon=-0.1), "not a finite budget >= 0"),
    (lambda d: d["rows"][1].update(n_trials="four"), "'n_trials' must be a whole number"),
    (lambda d: d["outcomes"][0]["adv_pred"].update({"0.1": Y}), "gives accuracy 1.000000 over its trials, but its "
                                                                "row says adv_rca 0.750000"),
    (lambda d: d["outcomes"].append(1), "outcomes[2] must be a JSON object"),
    (lambda d: d["outcomes"][0].pop("trial"), "outcomes[0] field 'trial' must be a list"),
    (lambda d: d["outcomes"][0].update(y=[0, 1]), "has 4 trials but 2 labels"),
    (lambda d: d["outcomes"][0]["adv_pred"].update({"abc": Y}), "adv_pred['abc'] must be a list of 4"),
])
def test_edited_results_files_are_refused(tmp_path, edit, fragment):
    import json

    from eegrobust.data._checks import DataError

    path = tmp_path / "results.json"
    _result({"fgsm": {0}, "linf_pgd": {1}}).to_json(path)
    assert len(SuiteResult.from_json(path).rows) == 4  # as written, it reads
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(DataError, match="edited or damaged|must be a JSON object|must be a whole number") as err:
        SuiteResult.from_json(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_drop_equal_to_max_drop_passes():
    """36/40 clean, 24/40 robust: the drop is exactly 0.3, which floats make 0.30000000000000004; the gate (audit
    and assert_robust alike) must pass a tie."""
    from eegrobust.harness.metrics import exceeds
    from eegrobust.harness.robustness import RobustnessResult

    drop = 36 / 40 - 24 / 40
    assert drop > 0.3 and not exceeds(drop, 0.3) and exceeds(25 / 40 - 12 / 40, 0.3)
    fields = dict(attack="fgsm", epsilon=0.06, unit="rel", seed=0, n_trials=40, clean_accuracy=0.9,
                  adversarial_accuracy=0.6, clean_bca=0.9, adversarial_bca=0.6, drop=drop, max_drop=0.3, snr_db=20.0,
                  budget_snr_db=20.0, n_perturbed=36)
    assert RobustnessResult(**fields).passed
    assert not RobustnessResult(**{**fields, "drop": 0.3 + 1 / 40}).passed
