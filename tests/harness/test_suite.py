import json

import numpy as np
import pytest

from eegrobust.data import ConfigError, DataError
from eegrobust.harness.config import PRESETS, SuiteConfig
from eegrobust.harness.results import BAND_COLUMNS, COLUMNS, EXTRA_COLUMNS, SuiteResult
from eegrobust.harness.store import Store
from eegrobust.harness.suite import run_suite

FAST = dict(models=("toy", "eegnet"), white_box=("fgsm", "linf_pgd", "deepfool"), gray_box=("ufgsm",),
            black_box=("substitute", "square"), epsilons=(0.1, 1.0), n_seed_trials=20, max_queries=30,
            pgd_steps=10, substitute_rounds=1, substitute_arch="toy", train={"max_epochs": 5, "patience": None})


@pytest.fixture(scope="module")
def result(split, _toy_victims):
    train, test = split
    return run_suite(SuiteConfig(**FAST), train=train, test=test, victims=_toy_victims, progress=False)


def rows_of(result, **match):
    return [r for r in result.rows if all(r[k] == v for k, v in match.items())]


def test_rows_cover_every_cell(result):
    for model in ("toy", "eegnet"):
        for attack in ("fgsm", "linf_pgd", "deepfool", "noise", "square", "substitute_linf_pgd"):
            rows = rows_of(result, model=model, attack=attack)
            assert sorted(r["epsilon"] for r in rows) == [0.0, 0.1, 1.0], (model, attack)
        other = "eegnet" if model == "toy" else "toy"
        assert rows_of(result, model=model, threat_model="gray_box", substitute=other)
    assert set(COLUMNS) <= set(result.rows[0])


def test_white_box_accuracy_really_drops(result):
    for model in ("toy", "eegnet"):
        (pgd,) = rows_of(result, model=model, attack="linf_pgd", epsilon=1.0)
        assert pgd["clean_rca"] > 0.7
        assert pgd["adv_rca"] < 0.2
        assert pgd["drop"] == pytest.approx(pgd["clean_rca"] - pgd["adv_rca"])
        assert pgd["linf_rel"] <= 1.0 + 1e-4
        # a perturbation within the budget has at least the SNR of a full-budget one: -20 log10(eps) dB
        assert 0.0 - 0.5 <= pgd["snr_db"] < 60


def test_epsilon_zero_is_clean_and_checks_pass(result):
    for r in rows_of(result, epsilon=0.0):
        assert r["adv_rca"] == r["clean_rca"]
    by_name = {c["name"]: c for c in result.checks}
    assert by_name["epsilon 0 gives clean accuracy"]["passed"]
    assert by_name["no L-inf perturbation exceeds its budget"]["passed"]
    assert by_name["PGD at least as strong as FGSM"]["passed"]


def test_black_box_reports_queries_and_agreement(result):
    (sq,) = rows_of(result, model="toy", attack="square", epsilon=1.0)
    assert 0 < sq["queries_per_trial"] <= 30
    assert sq["n_trials"] == result.provenance["n_black_box_eval_trials"]
    assert result.provenance["n_black_box_seed_trials"] == 20
    agree = result.provenance["substitute_agreement"]["toy/seed0"]
    assert 0.5 <= agree <= 1.0
    assert result.provenance["substitute_training_queries"]["toy/seed0"] == 40  # 20 seeds + 20 augmented


def test_results_round_trip(result, tmp_path):
    paths = result.save(tmp_path)
    back = SuiteResult.from_json(paths["json"])
    assert back.rows == json.loads(result.to_json())["rows"]
    assert back.config == result.config
    header = paths["csv"].read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS) + list(BAND_COLUMNS) + list(EXTRA_COLUMNS)  # sfreq known: SNR per band too
    assert len(paths["csv"].read_text().splitlines()) == len(result.rows) + 1
    assert back.provenance["model_hashes"]["toy"] == result.provenance["model_hashes"]["toy"]
    assert "torch" in back.environment["versions"]


def _cell(r):
    return (r["model"], r["threat_model"], r["attack"], r["substitute"], r["attack_seed"])


def test_resume_skips_finished_cells(split, toy_victims, tmp_path):
    _, test = split
    config = SuiteConfig(**{**FAST, "threat_models": ("white_box",), "white_box": ("fgsm", "linf_pgd")})
    first = run_suite(SuiteConfig(**{**FAST, "threat_models": ("white_box",), "white_box": ("fgsm",)}),
                      test=test, victims=toy_victims, progress=False, store=Store(tmp_path))
    stored = sorted((tmp_path / "cells").glob("*.json"))
    assert len(stored) == len(toy_victims)  # one cell per victim: fgsm at every budget
    for path in stored:  # a re-run cell would overwrite this
        path.write_text(path.read_text().replace('"wall_s": ', '"wall_s": -123.0, "was": '))
    with pytest.raises(ConfigError, match="already holds results"):
        run_suite(config, test=test, victims=toy_victims, progress=False, store=Store(tmp_path))
    resumed = run_suite(config, test=test, victims=toy_victims, progress=False, store=Store(tmp_path), resume=True)
    fgsm = [r for r in resumed.rows if r["attack"] == "fgsm"]
    assert fgsm and all(r["wall_s"] == -123.0 for r in fgsm)
    assert {_cell(r) for r in resumed.rows} >= {_cell(r) for r in first.rows}
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2 * len(toy_victims)
    assert resumed.provenance["n_cells_run"] == len(toy_victims)


def test_resume_with_other_data_is_refused(split, toy_victims, tmp_path):
    _, test = split
    config = SuiteConfig(**{**FAST, "threat_models": ("white_box",), "white_box": ("fgsm",)})
    run_suite(config, test=test, victims=toy_victims, progress=False, store=Store(tmp_path))
    other = test.subset(np.arange(test.n_trials - 4))
    with pytest.raises(ConfigError, match="other evaluation data"):
        run_suite(config, test=other, victims=toy_victims, progress=False, store=Store(tmp_path), resume=True)


def test_gray_box_skipped_without_training_data(split, toy_victims):
    _, test = split
    config = SuiteConfig(**{**FAST, "threat_models": ("gray_box",)})
    result = run_suite(config, test=test, victims=toy_victims, progress=False)
    assert result.rows == []
    assert "gray_box" in result.provenance["skipped"][0]


def test_victim_that_does_not_fit_the_epochs(split, toy_victims):
    _, test = split
    with pytest.raises(DataError, match="expects 4 channels x 128 samples"):
        run_suite(SuiteConfig(**FAST), test=test.subset(np.arange(10)).__class__(
            test.X[:, :3], test.y, test.sfreq, test.ch_names[:3], test.classes), victims=toy_victims, progress=False)


@pytest.mark.parametrize("bad, match", [
    ({"white_box": ("lnf_pgd",)}, "Did you mean 'linf_pgd'"),
    ({"threat_models": ("whitebox",)}, "Did you mean 'white_box'"),
    ({"epsilons": ()}, "epsilons must be non-empty"),
    ({"epsilons": (-0.1,)}, "epsilons must be finite and >= 0"),
    ({"epsilons": ("a",)}, "epsilons must be numbers"),
    ({"max_queries": 0}, "max_queries must be an integer >= 2"),
    ({"transfer_steps": 0}, "transfer_steps must be an integer >= 1, got 0"),
    ({"substitute_rounds": 0}, "substitute_rounds must be an integer >= 1, got 0"),
    ({"models": ("eegnett",)}, "Did you mean 'eegnet'"),
    ({"epsilons": (0.05,), "query_epsilons": (0.1,)}, r"query_epsilons 0.1 is not one of epsilons \(0.05\)"),
])
def test_config_errors_name_the_value(bad, match):
    with pytest.raises(ConfigError, match=match):
        SuiteConfig(**bad)


def test_config_round_trips_and_presets(tmp_path):
    config = SuiteConfig(**FAST)
    assert SuiteConfig.from_dict(config.to_dict()) == config
    toml = tmp_path / "suite.toml"
    toml.write_text('models = ["toy"]\nepsilons = [0.05, 0.1]\nwhite_box = ["fgsm"]\n')
    assert SuiteConfig.from_toml(toml).epsilons == (0.05, 0.1)
    assert SuiteConfig.make("quick") == PRESETS["quick"]
    with pytest.raises(ConfigError, match="Did you mean 'quick'"):
        SuiteConfig.make("quik")
    with pytest.raises(ConfigError, match="config key"):
        SuiteConfig.from_dict({"epsilon": [0.1]})
    # budgets given (the CLI's --eps) are the budgets of every attack, query attacks included
    assert PRESETS["standard"].query_epsilons == (0.1, 0.3)
    assert SuiteConfig.make("standard", epsilons=(0.05,)).query_epsilons is None
    assert SuiteConfig.make("standard", epsilons=(0.05, 0.1), query_epsilons=(0.1,)).query_epsilons == (0.1,)


def test_rows_report_snr_definitions_and_bands(result):
    (fgsm,) = rows_of(result, model="toy", attack="fgsm", epsilon=0.1)
    assert fgsm["snr_db"] == pytest.approx(20.0, abs=1.0)  # a sign perturbation of 0.1 demeaned std: 20 dB
    assert fgsm["snr_fooled_db"] is None or fgsm["snr_fooled_db"] == pytest.approx(20.0, abs=2.0)
    assert {"snr_slow_db", "snr_delta_db", "snr_alpha_db", "snr_gamma_db"} <= set(fgsm)
    (clean,) = rows_of(result, model="toy", attack="fgsm", epsilon=0.0)
    assert clean["snr_db"] == float("inf") and clean["snr_fooled_db"] is None


def test_query_attacks_keep_per_trial_queries_and_curve(result):
    from eegrobust.harness.analysis import query_curve

    frame = result.outcomes_frame()
    sq = frame[(frame["attack"] == "square") & (frame["model"] == "toy") & (frame["epsilon"] == 1.0)]
    attacked = sq["clean_pred"] == sq["y"]
    assert sq.loc[attacked, "queries"].notna().all() and (sq.loc[attacked, "queries"] <= 30).all()
    curve = query_curve(frame)
    # only attacks that count queries have a curve: no white-box, gray-box or control rows at "0 queries"
    assert set(curve["threat_model"]) == {"black_box"}
    assert {"square", "substitute_linf_pgd"} <= set(curve["attack"]) and "fgsm" not in set(curve["attack"])
    c = curve[(curve["attack"] == "square") & (curve["model"] == "toy") & (curve["epsilon"] == 1.0)]
    assert c["robust_rca"].is_monotonic_decreasing
    (row,) = rows_of(result, model="toy", attack="square", epsilon=1.0)
    assert c["robust_rca"].iloc[-1] == pytest.approx(row["adv_rca"])  # all queries spent: the row's accuracy
    assert c["robust_rca"].iloc[0] <= row["clean_rca"] + 1e-9


def test_minimal_norm_rows_count_trials_never_fooled(result):
    (df,) = rows_of(result, model="toy", attack="deepfool", epsilon=1.0)
    assert df["info"]["never_fooled"] >= 0
    names = {c["name"] for c in result.checks}
    assert {"unbounded white-box attacks reach 0 % accuracy",
            "minimal-norm curve and fixed-budget attacks agree (L-inf)"} <= names


def test_median_min_norm_is_on_the_epsilon_grid(result):
    """DeepFool (L2): a trial is fooled at epsilon exactly when its smallest flipping perturbation fits, so the share
    of attacked trials fooled at each budget and the median minimal norm agree on the epsilon grid (it was
    sqrt(n_chans * n_times) times larger for L2, about 73x on SCP1)."""
    rows = sorted((r for r in result.rows if r["model"] == "toy" and r["attack"] == "deepfool" and r["epsilon"] > 0),
                  key=lambda r: r["epsilon"])
    median = rows[0]["median_min_norm"]
    assert all(r["median_min_norm"] == median for r in rows)  # one run gives every budget
    for r in rows:  # fooled share below one half exactly where the median does not fit yet
        fooled_share = r["success_rate"]
        assert (fooled_share >= 0.5) == (median <= r["epsilon"] * (1 + 1e-4)), (r["epsilon"], fooled_share, median)


def test_report_shows_query_curves_and_band_snr(result, tmp_path):
    from eegrobust.harness.report import write_report

    paths = write_report(result, tmp_path, formats="md")
    text = paths["md"].read_text()
    assert "### SNR per frequency band" in text and "### Accuracy vs queries" in text
    assert "demeaned" in text  # the budget and SNR definitions are stated in every report
    assert (tmp_path / "figures" / "accuracy_queries.png").stat().st_size > 1000
    line = next(ln for ln in text.splitlines() if ln.startswith("| toy | square | 1 |"))
    assert len(line.split("|")) > 5
    table = text.split("### Accuracy vs queries")[1].split("###")[0]
    assert "| fgsm |" not in table and "| linf_pgd |" not in table and "| noise |" not in table


def test_black_box_substitute_chosen_by_agreement(split, _toy_victims):
    train, test = split
    config = SuiteConfig(**{**FAST, "models": ("toy",), "threat_models": ("black_box",), "black_box": ("substitute",),
                            "substitute_arch": "agreement"})
    result = run_suite(config, train=train, test=test, victims=_toy_victims, progress=False)
    pick = result.provenance["substitute_members"]["toy/seed0"]
    assert pick["chosen"] in pick["agreement"] and set(pick["agreement"]) <= {"eegnet", "deep4", "shallow"}
    assert pick["agreement"][pick["chosen"]] == max(pick["agreement"].values())
    # 16 trained seeds and 16 augmented, plus the 4 held-out seeds that score the members
    assert result.provenance["substitute_training_queries"]["toy/seed0"] == 36
    assert rows_of(result, attack="substitute_linf_pgd", epsilon=1.0)


def test_substitute_arch_checked():
    with pytest.raises(ConfigError, match=r"substitute_arch must be one of .*'agreement'.*Did you mean 'ensemble'"):
        SuiteConfig(substitute_arch="ensembl")


def test_cell_predicts_each_new_adversarial_trial_once():
    """Unchanged trials keep their clean label and a trial identical to the previous budget's keeps that label; the
    rest are predicted, and the labels are the victim's own on every trial."""
    import torch

    from eegrobust.harness.cell import _predict_new

    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rows = 0

        def forward(self, x):
            self.rows += len(x)
            return torch.stack([x.mean((1, 2)), -x.mean((1, 2))], 1)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2, 16)).astype(np.float32)
    victim = Counting()
    with torch.no_grad():
        clean = victim(torch.from_numpy(X)).argmax(1).numpy()
    small = X.copy()
    small[:4] += 1.0  # four trials perturbed at the first budget
    large = small.copy()
    large[6:] -= 2.0  # the next budget keeps those four and perturbs four more
    victim.rows = 0
    first = _predict_new(victim, X, clean, small, None, "pgd", 0.1)
    assert victim.rows == 4
    second = _predict_new(victim, X, clean, large, (small, first), "pgd", 0.2)
    assert victim.rows == 8
    with torch.no_grad():
        for X_adv, labels in ((small, first), (large, second)):
            np.testing.assert_array_equal(labels, victim(torch.from_numpy(X_adv)).argmax(1).numpy())
