import numpy as np
import pandas as pd
import pytest
from eegrobust.data import ConfigError, DataError
from eegrobust.harness.analysis import (
    KEYS,
    OUTCOME_COLUMNS,
    UNIT_KEYS,
    aggregate,
    confusion,
    holm,
    paired_tests,
    per_class,
    worst_case,
)
from scipy import stats

_UNIT = {"dataset": "synth", "subject": "S1", "session": "0", "fold": "0", "protocol": "within", "model": "eegnet",
         "arm": "real", "train_seed": 0, "attack_seed": 0}


def _outcomes(y, clean_pred, adv_pred, *, attack="pgd", norm="linf", epsilon=0.1, threat_model="white_box",
              trials=None, substitute="", **unit):
    n = len(y)
    return pd.DataFrame({**_UNIT, **unit, "threat_model": threat_model, "attack": attack, "substitute": substitute,
                         "norm": norm, "epsilon": epsilon,
                         "trial": np.arange(n) if trials is None else np.asarray(trials),
                         "y": np.asarray(y, dtype=int), "clean_pred": np.asarray(clean_pred, dtype=int),
                         "adv_pred": np.asarray(adv_pred, dtype=int)})


def _random_outcomes(rng, n_trials=40, n_classes=3):
    """Two subjects, three white-box attacks (each on its own random trial subset), a gray-box and a control."""
    frames = []
    for subject in ("S1", "S2"):
        y = rng.integers(0, n_classes, n_trials)
        clean = np.where(rng.random(n_trials) < 0.8, y, (y + 1) % n_classes)
        for threat_model, attack in (("white_box", "fgsm"), ("white_box", "pgd"), ("white_box", "cw"),
                                     ("gray_box", "transfer"), ("control", "noise")):
            for norm in ("linf", "l2"):
                for epsilon in (0.0, 0.5, 1.0):
                    fooled = rng.random(n_trials) < epsilon * 0.6
                    adv = np.where((clean == y) & fooled, (y + 1) % n_classes, clean)
                    keep = np.sort(rng.choice(n_trials, size=int(n_trials * 0.8), replace=False))
                    frames.append(_outcomes(y[keep], clean[keep], adv[keep], trials=keep, attack=attack, norm=norm,
                                            epsilon=epsilon, threat_model=threat_model, subject=subject))
    return pd.concat(frames, ignore_index=True)


def test_columns_match_keys():
    assert KEYS[: len(UNIT_KEYS)] == UNIT_KEYS
    assert set(_random_outcomes(np.random.default_rng(0)).columns) == set(OUTCOME_COLUMNS)


@pytest.mark.parametrize("seed", range(8))
def test_worst_case_never_above_any_single_attack(seed):
    outcomes = _random_outcomes(np.random.default_rng(seed))
    out = worst_case(outcomes)
    assert len(out) == 2 * 2 * 3  # subjects x norms x epsilons
    assert (out["robust_rca"] <= out["min_attack_rca"] + 1e-12).all()
    assert (out["robust_rca"] <= out["clean_rca"] + 1e-12).all()
    assert set(out["attacks"]) == {"cw,fgsm,pgd"}
    # n_trials is the intersection of the three attacks' trial sets, recomputed by hand for one group
    sub = outcomes[(outcomes.subject == "S2") & (outcomes.norm == "l2") & (outcomes.epsilon == 1.0)
                   & (outcomes.threat_model == "white_box")]
    ok = sub.assign(ok=(sub.adv_pred == sub.y) & (sub.clean_pred == sub.y)).pivot(index="trial", columns="attack",
                                                                                    values="ok").dropna()
    row = out[(out.subject == "S2") & (out.norm == "l2") & (out.epsilon == 1.0)].iloc[0]
    assert row["n_trials"] == len(ok)
    assert row["robust_rca"] == pytest.approx(ok.all(axis=1).mean())
    assert row["min_attack_rca"] == pytest.approx(ok.mean().min())


def test_worst_case_strictly_below_each_attack():
    y = [0, 1, 0, 1]
    a = _outcomes(y, y, [1, 0, 0, 1], attack="fgsm")  # fools trials 0, 1
    b = _outcomes(y, y, [0, 1, 1, 0], attack="pgd")  # fools trials 2, 3
    out = worst_case(pd.concat([a, b]))
    assert len(out) == 1
    row = out.iloc[0]
    assert row["min_attack_rca"] == 0.5
    assert row["robust_rca"] == 0.0 and row["robust_bca"] == 0.0
    assert row["clean_rca"] == 1.0 and row["n_trials"] == 4 and row["n_attacks"] == 2
    assert row["attacks"] == "fgsm,pgd"


def test_worst_case_uses_only_trials_common_to_all_attacks():
    a = _outcomes([0] * 4, [0] * 4, [0, 0, 1, 1], attack="fgsm", trials=[0, 1, 2, 3])
    b = _outcomes([0] * 4, [0] * 4, [0, 0, 0, 0], attack="boundary", trials=[2, 3, 4, 5], threat_model="black_box")
    out = worst_case(pd.concat([a, b]), threat_models=("white_box", "black_box"))
    row = out.iloc[0]
    assert row["n_trials"] == 2  # trials 2 and 3
    assert row["robust_rca"] == 0.0 and row["min_attack_rca"] == 0.0 and row["worst_attack"] == "white_box:fgsm"
    assert row["attacks"] == "black_box:boundary,white_box:fgsm"


def test_worst_case_excludes_control_and_other_threat_models():
    y = [0, 1, 0, 1]
    white = _outcomes(y, y, y, attack="pgd")
    noise = _outcomes(y, y, [1, 0, 1, 0], attack="noise", threat_model="control")
    gray = _outcomes(y, y, [1, 0, 1, 0], attack="transfer", threat_model="gray_box", substitute="deep4")
    out = worst_case(pd.concat([white, noise, gray]))
    assert out["robust_rca"].tolist() == [1.0] and out["attacks"].tolist() == ["pgd"]
    both = worst_case(pd.concat([white, noise, gray]), threat_models=("white_box", "gray_box"))
    assert both["robust_rca"].tolist() == [0.0]
    assert both["attacks"].tolist() == ["gray_box:transfer<-deep4,white_box:pgd"]
    with pytest.raises(ConfigError, match="control"):
        worst_case(white, threat_models=("white_box", "control"))
    with pytest.raises(ConfigError, match="apgd"):
        worst_case(white, attacks=["apgd"])


def test_worst_case_never_pools_norms():
    y = [0, 1, 0, 1]
    linf = _outcomes(y, y, [1, 0, 0, 1], attack="pgd", norm="linf", epsilon=1.0)
    l2 = _outcomes(y, y, [0, 1, 1, 0], attack="pgd_l2", norm="l2", epsilon=1.0)
    out = worst_case(pd.concat([linf, l2])).set_index("norm")
    assert sorted(out.index) == ["l2", "linf"]
    assert out.loc["linf", "robust_rca"] == 0.5 and out.loc["l2", "robust_rca"] == 0.5  # pooled would be 0.0
    assert out.loc["linf", "attacks"] == "pgd" and out.loc["l2", "attacks"] == "pgd_l2"


def test_worst_case_refuses_bad_outcomes():
    good = _outcomes([0, 1], [0, 1], [0, 0])
    with pytest.raises(DataError, match="adv_pred"):
        worst_case(good.drop(columns="adv_pred"))
    with pytest.raises(DataError, match="empty"):
        worst_case(good.iloc[:0])
    with pytest.raises(DataError, match="duplicate"):
        worst_case(pd.concat([good, good]))
    with pytest.raises(DataError, match="labels y"):
        worst_case(pd.concat([good, _outcomes([1, 1], [1, 1], [1, 1], attack="fgsm")]))


def _rows(values, *, norm="linf", **extra):
    return pd.DataFrame([{"model": "eegnet", "threat_model": "white_box", "attack": "pgd", "substitute": "",
                          "norm": norm, "epsilon": 0.1, "train_seed": 0, "attack_seed": 0, "fold": "0",
                          **extra, "subject": s, "adv_rca": v} for s, v in values])


def test_aggregate_sd_and_t_interval_match_scipy():
    values = [0.52, 0.61, 0.47, 0.70, 0.58, 0.66]
    out = aggregate(_rows([(f"S{i}", v) for i, v in enumerate(values)]))
    assert len(out) == 1
    row = out.iloc[0]
    assert row["n"] == 6 and row["mean"] == pytest.approx(np.mean(values))
    assert row["sd"] == pytest.approx(np.std(values, ddof=1))
    assert row["sem"] == pytest.approx(stats.sem(values))
    low, high = stats.t.interval(0.95, 5, loc=np.mean(values), scale=stats.sem(values))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["n_note"] == "n=6 subjects"


def test_aggregate_interval_of_an_accuracy_stays_in_0_1():
    """Three subjects at 0, 0 and 0.05: the t-interval reaches below 0; an accuracy's interval is clipped there.
    Another column (a drop can be negative) keeps its interval."""
    rows = _rows([("S1", 0.0), ("S2", 0.0), ("S3", 0.05)])
    row = aggregate(rows).iloc[0]
    assert row["ci_low"] == 0.0 and 0.05 < row["ci_high"] < 1
    rows["drop"] = rows["adv_rca"] - 0.01
    assert aggregate(rows, value="drop").iloc[0]["ci_low"] < -0.01


def test_aggregate_counts_each_subject_once():
    rows = pd.concat([_rows([("S1", 0.2)], train_seed=0), _rows([("S1", 0.4)], train_seed=1),
                      _rows([("S2", 0.9)])])
    by_subject = aggregate(rows).iloc[0]
    assert by_subject["n"] == 2 and by_subject["mean"] == pytest.approx(0.6)  # (0.3 + 0.9) / 2
    pooled = aggregate(rows, level="all").iloc[0]
    assert pooled["n"] == 3 and pooled["mean"] == pytest.approx(0.5)
    assert pooled["n_note"] == "n=3 units"


def test_aggregate_single_unit_has_no_spread():
    row = aggregate(_rows([("S1", 0.3)])).iloc[0]
    assert row["n"] == 1 and row["mean"] == 0.3
    assert np.isnan(row["sd"]) and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    assert row["n_note"] == "n=1 (no spread)"


def test_aggregate_refuses_to_pool_norms():
    rows = pd.concat([_rows([("S1", 0.3), ("S2", 0.4)], norm="linf"), _rows([("S1", 0.8), ("S2", 0.9)], norm="l2")])
    with pytest.raises(ConfigError, match=r"\['l2', 'linf'\]"):
        aggregate(rows, by=("model", "attack", "epsilon"))
    out = aggregate(rows, by=("model", "attack", "norm", "epsilon")).set_index("norm")
    assert out.loc["linf", "mean"] == pytest.approx(0.35) and out.loc["l2", "mean"] == pytest.approx(0.85)


def test_aggregate_refuses_bad_options():
    rows = _rows([("S1", 0.3)])
    with pytest.raises(DataError, match="clean_bca"):
        aggregate(rows, value="clean_bca")
    with pytest.raises(ConfigError, match="level"):
        aggregate(rows, level="trial")
    with pytest.raises(ConfigError, match="overlap"):
        aggregate(rows, by=("model", "subject"))


def _paired_table(n_subjects, gap, rng):
    b = rng.uniform(0.4, 0.9, n_subjects)
    rows = []
    for i in range(n_subjects):
        for seed in (0, 1):  # duplicates within (subject, model, norm, epsilon) are averaged first
            rows.append({"subject": f"S{i}", "model": "b_net", "train_seed": seed, "norm": "linf", "epsilon": 0.1,
                         "adv_rca": b[i] + 0.01 * seed})
            rows.append({"subject": f"S{i}", "model": "a_net", "train_seed": seed, "norm": "linf", "epsilon": 0.1,
                         "adv_rca": b[i] - gap + 0.01 * seed})
    return pd.DataFrame(rows)


def test_paired_tests_detect_a_consistent_gap():
    out = paired_tests(_paired_table(8, 0.1, np.random.default_rng(0)))
    assert len(out) == 1
    row = out.iloc[0]
    assert (row["a"], row["b"], row["n_pairs"]) == ("a_net", "b_net", 8)
    assert row["mean_diff"] == pytest.approx(-0.1)
    assert row["p"] < 0.05 and row["significant"] and row["note"] == ""
    less = paired_tests(_paired_table(8, 0.1, np.random.default_rng(0)), alternative="less").iloc[0]
    greater = paired_tests(_paired_table(8, 0.1, np.random.default_rng(0)), alternative="greater").iloc[0]
    assert less["p"] < 0.05 < greater["p"]


def test_paired_tests_give_no_p_value_for_few_subjects():
    row = paired_tests(_paired_table(3, 0.1, np.random.default_rng(0))).iloc[0]
    assert row["n_pairs"] == 3 and np.isnan(row["p"]) and np.isnan(row["p_holm"])
    assert row["note"] == "fewer than 5 subjects: no test" and not row["significant"]


def test_paired_tests_holm_over_all_rows():
    rng = np.random.default_rng(1)
    table = pd.concat([_paired_table(8, 0.1, rng).assign(epsilon=e) for e in (0.1, 0.2)])
    table = pd.concat([table, table[table.model == "b_net"].assign(model="c_net", adv_rca=lambda d: d.adv_rca + 0.05)])
    out = paired_tests(table)
    assert len(out) == 2 * 3  # epsilons x model pairs
    assert out["p_holm"].to_numpy() == pytest.approx(holm(out["p"].to_numpy()))
    assert (out["p_holm"] >= out["p"]).all()
    with pytest.raises(ConfigError, match="norms"):
        paired_tests(pd.concat([table, table.assign(norm="l2")]), by=("epsilon",))
    with pytest.raises(ConfigError, match="fewer than two levels"):
        paired_tests(table[table.model == "a_net"])


def test_holm_worked_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(1*0.04, 0.06)=0.06
    p = [0.01, 0.04, np.nan, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, 0.06, np.nan, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1
    assert holm([]).shape == (0,)
    with pytest.raises(DataError, match="1.5"):
        holm([0.1, 1.5])


def test_per_class_and_confusion_counts():
    # class 0: 3 trials (clean all right, adv 1 right), class 1: 1 trial (clean wrong, stays wrong)
    outcomes = _outcomes([0, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0])
    pc = per_class(outcomes).set_index("class")
    assert pc.loc[0, "n"] == 3 and pc.loc[1, "n"] == 1
    assert pc.loc[0, "clean_recall"] == 1.0 and pc.loc[0, "adv_recall"] == pytest.approx(1 / 3)
    assert pc.loc[1, "clean_recall"] == 0.0 and pc.loc[1, "adv_recall"] == 0.0

    cm = confusion(outcomes)
    assert len(cm) == 2 * 2 * 2 and cm["count"].sum() == 2 * 4
    clean = cm[cm.kind == "clean"].pivot(index="true", columns="pred", values="count").to_numpy()
    adv = cm[cm.kind == "adv"].pivot(index="true", columns="pred", values="count").to_numpy()
    np.testing.assert_array_equal(clean, [[3, 0], [1, 0]])
    np.testing.assert_array_equal(adv, [[1, 2], [1, 0]])
    assert len(confusion(outcomes, n_classes=3, by=())) == 2 * 3 * 3
    with pytest.raises(ConfigError, match="n_classes"):
        confusion(outcomes, n_classes=1)
    with pytest.raises(DataError, match="'y'"):
        per_class(outcomes.assign(y=outcomes.y - 1))


# -- the outcomes frame ------------------------------------------------------------------------------------------
def _frame_block_by_block(outcomes):
    """The definition: one frame per cell and budget, concatenated (what `outcomes_frame` builds faster)."""
    frames = []
    for block in outcomes:
        keys = {k: v for k, v in block.items() if k not in ("trial", "y", "clean_pred", "adv_pred", "queries")}
        for eps, adv in block["adv_pred"].items():
            frame = {**keys, "epsilon": float(eps), "trial": block["trial"], "y": block["y"],
                     "clean_pred": block["clean_pred"], "adv_pred": adv}
            if eps in block.get("queries", {}):
                frame["queries"] = [np.nan if q is None else q for q in block["queries"][eps]]
            frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)


def test_outcomes_frame_equals_the_block_by_block_frame():
    import copy
    import gzip
    import json
    from pathlib import Path

    from eegrobust.harness.results import SuiteResult

    path = Path(__file__).parent / "data" / "scp1_standard_results.json.gz"
    outcomes = json.loads(gzip.decompress(path.read_bytes()))["outcomes"]
    assert any("queries" in b for b in outcomes) and any("queries" not in b for b in outcomes)
    pd.testing.assert_frame_equal(SuiteResult(outcomes=outcomes).outcomes_frame(), _frame_block_by_block(outcomes),
                                  check_exact=True)
    odd = copy.deepcopy(outcomes)  # a given model (no train seed), an older file's missing key, an empty block
    odd[0]["train_seed"] = None
    del odd[1]["session"]
    odd[2] = {**odd[2], "trial": [], "y": [], "clean_pred": [], "adv_pred": {k: [] for k in odd[2]["adv_pred"]}}
    odd[3]["queries"] = {k: [None] * len(odd[3]["trial"]) for k in odd[3]["adv_pred"]}
    frame = SuiteResult(outcomes=odd).outcomes_frame()
    pd.testing.assert_frame_equal(frame, _frame_block_by_block(odd), check_exact=True)
    assert frame["train_seed"].isna().sum() == len(odd[0]["trial"]) * len(odd[0]["adv_pred"])


def test_worst_case_keeps_every_trial_when_an_attack_ran_on_fewer():
    """A universal perturbation is tested on the trials outside its fit set: the per-trial worst case still covers
    every trial the per-trial attacks evaluated (it covered only uap's half before), and uap counts where it ran."""
    y = [0] * 10
    pgd = _outcomes(y, y, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], attack="pgd", trials=list(range(10)))
    uap = _outcomes(y[:4], y[:4], [0, 0, 1, 0], attack="uap", trials=[6, 7, 8, 9])  # fools trial 8, PGD does not
    row = worst_case(pd.concat([pgd, uap])).iloc[0]
    assert row["n_trials"] == 10 and row["robust_rca"] == pytest.approx(0.8)  # trials 3 (PGD) and 8 (uap) fall
    assert row["min_attack_rca"] == pytest.approx(0.9) and row["worst_attack"] == "pgd"
    assert row["attacks"] == "pgd,uap" and row["n_attacks"] == 2
