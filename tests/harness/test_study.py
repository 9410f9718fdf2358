"""Studies end to end on synthetic multi-subject epochs files: protocols, store, resume after kill -9, cache, CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from eegrobust.data import ConfigError, DataError, epochs_to_data, make_synthetic_epochs
from eegrobust.harness.cli import main
from eegrobust.harness.study import StudyConfig, run_study

SUITE = {"white_box": ["fgsm", "linf_pgd"], "gray_box": [], "black_box": [], "epsilons": [0.3, 1.0],
         "pgd_steps": 5, "train": {"max_epochs": 4, "patience": None}}
FAST = dict(models=("toy",), preset="quick", threat=("white",), suite=SUITE, seeds=(0,))


@pytest.fixture(scope="module")
def subject_files(tmp_path_factory):
    """Three subjects, two sessions each, in BIDS-named epochs files."""
    root = tmp_path_factory.mktemp("bids")
    for sub in (1, 2, 3):
        for ses in (1, 2):
            epochs = make_synthetic_epochs(n_trials=24, random_state=10 * sub + ses)
            epochs.save(root / f"sub-0{sub}_ses-{ses}_task-x_epo.fif", verbose="error")
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EEGROBUST_CACHE", str(tmp_path / "cache"))


def _study(files, tmp_path, **kw):
    return StudyConfig(**{"data": (str(files / "sub-*_epo.fif"),), "out": str(tmp_path / "study"), **FAST, **kw})


@pytest.mark.parametrize("protocol, n_folds", [("cross-subject", 3), ("within-subject", 6), ("cross-session", 6)])
def test_protocols_give_rows_per_subject(subject_files, tmp_path, protocol, n_folds):
    folds = {"folds": 2} if protocol == "within-subject" else {}  # the others make their own folds
    res = run_study(_study(subject_files, tmp_path, protocol=protocol, **folds), progress=False)
    frame = res.frame()
    assert set(frame["subject"]) == {"01", "02", "03"}
    assert frame["fold"].nunique() == n_folds and set(frame["protocol"]) == {protocol}
    assert res.n_cells == n_folds * 3  # fgsm, linf_pgd and the noise control per fold
    summary = pd.read_csv(res.out / "summary.csv")
    wc = summary[(summary["kind"] == "worst_case") & (summary["epsilon"] == 1.0)]
    assert len(wc) == 1 and wc["n"].iloc[0] == 3  # across 3 subjects
    # the per-trial worst case is never above the best single attack
    subjects = pd.read_csv(res.out / "subjects.csv")
    for (subj, fold, eps), g in subjects[subjects["threat_model"] == "white_box"].groupby(
            ["subject", "fold", "epsilon"]):
        worst = g[g["kind"] == "worst_case"]["adv_rca"].iloc[0]
        assert worst <= g[g["kind"] == "attack"]["adv_rca"].min() + 1e-12
    outcomes = res.outcomes()
    assert {"trial", "y", "clean_pred", "adv_pred"} <= set(outcomes.columns)


def test_no_trial_of_a_test_fold_is_in_its_training_data(subject_files, tmp_path):
    res = run_study(_study(subject_files, tmp_path, protocol="cross-subject"), progress=False)
    for fold in res.result.provenance["folds"]:
        assert fold["train_data_hash"] != fold["test_data_hash"]
    assert all(f["subject"] in f["fold"] for f in res.result.provenance["folds"])


def test_second_run_trains_nothing_and_resume_reads_the_store(subject_files, tmp_path):
    first = run_study(_study(subject_files, tmp_path, protocol="cross-subject"), progress=False)
    assert first.n_trained == 3 and first.n_cells_run == first.n_cells
    again = run_study(_study(subject_files, tmp_path, protocol="cross-subject", out=str(tmp_path / "b")),
                      progress=False)
    assert again.n_trained == 0 and again.n_loaded == 3
    assert again.frame()["adv_rca"].tolist() == first.frame()["adv_rca"].tolist()
    resumed = run_study(_study(subject_files, tmp_path, protocol="cross-subject", resume=True), progress=False)
    assert resumed.n_cells_run == 0 and resumed.n_trained == 0 and resumed.n_loaded == 0
    no_cache = run_study(_study(subject_files, tmp_path, protocol="cross-subject", out=str(tmp_path / "c"),
                                cache=False), progress=False)
    assert no_cache.n_trained == 3


def test_resume_with_other_data_is_refused(subject_files, tmp_path):
    run_study(_study(subject_files, tmp_path, protocol="cross-subject"), progress=False)
    with pytest.raises(ConfigError, match="already holds results"):
        run_study(_study(subject_files, tmp_path, protocol="cross-subject"), progress=False)
    with pytest.raises(ConfigError, match="another study .*other (training|evaluation) data"):
        run_study(_study(subject_files, tmp_path, protocol="cross-subject", subjects=("01", "02"), resume=True),
                  progress=False)


def test_kill_mid_study_then_resume_loses_and_repeats_no_cell(subject_files, tmp_path):
    out = tmp_path / "killed"
    config = tmp_path / "study.toml"
    config.write_text(f"""
data = ["{subject_files}/sub-*_epo.fif"]
protocol = "within-subject"
folds = 2
models = ["toy"]
preset = "quick"
threat = ["white"]
seeds = [0]
out = "{out}"

[suite]
white_box = ["fgsm", "linf_pgd"]
gray_box = []
black_box = []
epsilons = [0.3, 1.0]
pgd_steps = 5
train = {{max_epochs = 4, patience = 0}}
""".replace("patience = 0", "val_fraction = 0.0"))
    env = {**os.environ, "EEGROBUST_CACHE": str(tmp_path / "cache"), "GIT_PYTHON_REFRESH": "quiet"}
    proc = subprocess.Popen([sys.executable, "-m", "eegrobust.harness", "run", "--config", str(config), "--quiet"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cells = out / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(cells.glob("*.json")) if cells.is_dir() else []) < 4:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_bytes() for p in cells.glob("*.json")}
    assert 0 < len(before) < 18, "the study was killed mid-way"
    assert not list(cells.glob(".*tmp")) or True  # a half-written temporary file may remain; it is never read
    assert main(["run", "--config", str(config), "--quiet", "--resume"]) == 0
    after = {p.name: p.read_bytes() for p in cells.glob("*.json")}
    assert len(after) == 18  # 6 folds x (fgsm, linf_pgd, noise)
    assert all(after[name] == data for name, data in before.items())  # finished cells were not run again
    rows = json.loads((out / "results.json").read_text())["rows"]
    keys = [(r["fold"], r["attack"], r["epsilon"]) for r in rows]
    assert len(keys) == len(set(keys)) == 18 * 3


def test_cli_run_end_to_end(subject_files, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["run", "--data", str(subject_files / "sub-*_epo.fif"), "--protocol", "cross-subject",
                 "--models", "toy", "--preset", "quick", "--threat", "white", "--attacks", "fgsm",
                 "--eps", "0.5", "--seeds", "0,1", "--out", str(out), "--quiet"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Across subjects" in text and "worst case" in text
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["train_seed"]) == {0, 1} and set(frame["subject"].astype(str).str.zfill(2)) == {"01", "02", "03"}
    assert (out / "study.json").is_file() and (out / "report.md").is_file()


@pytest.mark.parametrize("argv, match", [
    (["--data", "nowhere/sub-*_epo.fif"], "no files match"),
    (["--dataset", "scp1", "--seeds", "0,x"], "seeds must be non-negative integers"),
    (["--dataset", "scp1", "--protocol", "cross-subjects"], "Did you mean 'cross-subject'"),
    (["--dataset", "scp1", "--protocol", "cross-subject"], "subject"),
    (["--dataset", "scp1", "--protocol", "cross-session"], "session"),
    (["--train", "a-epo.fif"], "--train and --test go together"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, match):
    assert main(["run", *argv, "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_within_subject_k_larger_than_a_class(subject_files, tmp_path):
    with pytest.raises((DataError, ConfigError), match="24"):  # 48 trials per subject, 24 per class
        run_study(_study(subject_files, tmp_path, protocol="within-subject", folds=25), progress=False)


def test_study_file_unknown_key_did_you_mean(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('dataset = "scp1"\nprotocl = "official"\n')
    with pytest.raises(ConfigError, match="Did you mean 'protocol'"):
        StudyConfig.from_toml(path)


def test_labels_follow_class_names_not_event_codes(tmp_path):
    """Test epochs whose event codes are swapped (names right) give the same accuracy."""
    from eegrobust.harness.suite import run_suite

    epochs = make_synthetic_epochs(n_trials=64, random_state=3)
    train, test = epochs[:32], epochs[32:]
    assert test.event_id == {"class0": 1, "class1": 2}
    swapped = test.copy()
    swapped.events[:, 2] = 3 - swapped.events[:, 2]
    swapped.event_id = {"class0": 2, "class1": 1}
    config = {"models": ("toy",), "threat_models": ("white_box",), "white_box": ("fgsm",), "epsilons": (0.1,),
              "train": {"max_epochs": 4, "patience": None}}
    a = run_suite(config, train=epochs_to_data(train), test=epochs_to_data(test), progress=False)
    b = run_suite(config, train=epochs_to_data(train), test=epochs_to_data(swapped), progress=False)
    assert epochs_to_data(swapped).classes == ("class1", "class0")  # code order: the labels' indices differ
    assert [r["adv_rca"] for r in a.rows] == [r["adv_rca"] for r in b.rows]
    assert a.rows[0]["clean_rca"] > 0.7


def test_a_victim_at_chance_fails_the_sanity_check():
    from eegrobust.harness.checks import check_above_chance

    row = {"model": "eegnet", "subject": "scp2", "fold": "sub-scp2", "train_seed": 0, "n_trials": 120,
           "epsilon": 0.0, "clean_rca": 0.49, "chance_rca": 0.575}
    res = check_above_chance([row, {**row, "epsilon": 0.1}])
    assert not res["passed"] and "eegnet [scp2/sub-scp2 seed 0]: clean 0.490 <= chance bound 0.575" in res["detail"]
    assert check_above_chance([{**row, "clean_rca": 0.9}])["passed"]


def test_study_rows_carry_the_chance_bound(subject_files, tmp_path):
    res = run_study(_study(subject_files, tmp_path, protocol="cross-subject"), progress=False)
    assert all(0.5 <= r["chance_rca"] < 1 for r in res.rows)
    assert res.result.checks[0]["name"].startswith("every victim is above chance")
