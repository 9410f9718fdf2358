"""Training arms (`harness.arms`): one training loop, configured by callbacks; recorded in bundles and rows."""

import numpy as np
import pytest
import torch
from eegrobust.attacks.base import BudgetSpace, eval_mode
from eegrobust.attacks.budget import channel_scale
from eegrobust.attacks.whitebox import LinfPGD
from eegrobust.data._checks import ConfigError
from eegrobust.harness.arms import ARMS, Arm, parse_arms, train_arm
from eegrobust.harness.config import SuiteConfig
from eegrobust.harness.gan import GANQualityError
from eegrobust.models import load_bundle, save_bundle

FAST = {"max_epochs": 4, "patience": None}
#: enough epochs for the toy model to learn the synthetic task, so robustness differences are real ones
LEARN = {"max_epochs": 40, "patience": None}


def _robust_accuracy(model, train, test, eps, steps=20):
    """PGD-``steps`` robust accuracy at L-inf ``eps`` (unit rel, scale of the training trials)."""
    scale = channel_scale(train.X, "rel")
    X, y = torch.as_tensor(test.X, dtype=torch.float32), torch.as_tensor(test.y)
    S = X / torch.as_tensor(scale, dtype=torch.float32).reshape(1, -1, 1)
    with eval_mode(model):
        target = BudgetSpace(model, scale)
        clean = target(S).argmax(1) == y
        S_adv = LinfPGD(steps=steps, rel_stepsize=2.5, random_start=True).craft(target, S, y, epsilon=eps,
                                                                                rng=np.random.default_rng(0))
        robust = clean & (target(S_adv).argmax(1) == y)
    return clean.float().mean().item(), robust.float().mean().item()


# -- spelling and validation -----------------------------------------------------------------------------------
def test_arm_spec_strings_dicts_and_labels():
    assert Arm.make("pgd_at").label == "pgd_at"
    arm = Arm.make("PGD-AT(eps=0.1, steps=10)")
    assert arm.label == "pgd_at(eps=0.1,steps=10)"
    assert arm.kwargs == {"eps": 0.1, "steps": 10, "rel_stepsize": 2.5}
    assert Arm.make({"name": "trades", "beta": 1}).kwargs["beta"] == 1.0
    assert Arm.make(arm.label) == arm  # the label round-trips to the same arm
    assert parse_arms("none, pgd_at(eps=0.1,steps=10),trades") == ("none", "pgd_at(eps=0.1,steps=10)", "trades")
    with pytest.raises(ConfigError, match="arms lists 'pgd_at' more than once"):  # one arm, two spellings
        parse_arms(["pgd_at", "pgd_at(eps=" + repr(Arm.make("pgd_at").kwargs["eps"]) + ")"])
    assert parse_arms(None) == ("none",)
    assert Arm.make("none").key() == "none"  # undefended victims keep their cache keys
    assert Arm.make("pgd_at").key("rel") != Arm.make("pgd_at").key("uV")
    assert set(ARMS) == {"none", "augment", "gan", "noise", "fgsm_at", "pgd_at", "trades"}


@pytest.mark.parametrize("spec, match", [
    ("pgd_ta", "Did you mean 'pgd_at'"),
    ("tradse", "Did you mean 'trades'"),
    ("pgd_at(epss=0.1)", "Did you mean 'eps'"),
    ("pgd_at(eps=-0.1)", "must be > 0, got -0.1"),
    ("pgd_at(eps=0)", "must be > 0"),
    ("trades(beta=-1)", "must be >= 0, got -1.0"),
    ("noise(sigma=0)", "must be > 0, got 0.0"),
    ("noise(sigma=-0.5)", "must be > 0"),
    ("pgd_at(steps=0)", "integer >= 1"),
    ("pgd_at(steps=2.5)", "must be an integer"),
    ("pgd_at(eps=nan)", "finite number"),
    ("augment(probability=2)", r"lie in \[0, 1\]"),
    ("none(eps=0.1)", "takes no parameters"),
    ("pgd_at(eps)", "is not key=value"),
    ("pgd_at(eps=0.1", "unbalanced"),
    ("gan(force=maybe)", "true or false"),
])
def test_bad_arms_are_one_line_config_errors(spec, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_arms(spec)
    assert "\n" not in str(info.value)


def test_suite_config_validates_and_round_trips_arms():
    config = SuiteConfig(arms="none,trades(beta=1)")
    assert config.arms == ("none", "trades(beta=1.0)")
    assert SuiteConfig.from_dict(config.to_dict()) == config
    assert "arms" not in SuiteConfig().to_dict()  # plans written before arms existed keep their identity
    with pytest.raises(ConfigError, match="Did you mean 'pgd_at'"):
        SuiteConfig(arms=("pgd-att",))
    with pytest.raises(ConfigError, match="names no arm"):
        SuiteConfig(arms=())
    with pytest.raises(ConfigError, match="larger than any sensible training budget"):
        SuiteConfig(arms="fgsm_at(eps=5)")
    assert SuiteConfig(arms="fgsm_at(eps=5)", unit="uV").arms == ("fgsm_at(eps=5.0)",)  # 5 uV is sensible
    with pytest.raises(ConfigError, match="1000 uV"):
        SuiteConfig(arms="pgd_at(eps=5000)", unit="uV")


# -- every arm trains through the one loop and is recorded --------------------------------------------------------
@pytest.mark.parametrize("spec", ["none", "augment", "noise", "fgsm_at", "pgd_at(steps=2)", "trades(steps=2)",
                                  "gan(iterations=20,stages=1,force=true)"])
def test_each_arm_trains_and_is_recorded_in_the_bundle(spec, split, tmp_path, one_torch_thread):
    train, test = split
    if spec.startswith("gan"):
        with pytest.warns(UserWarning, match="forced"):
            model = train_arm("toy", train, spec, train_config=FAST, seed=0)
    else:
        model = train_arm("toy", train, spec, train_config=FAST, seed=0)
    arm = Arm.make(spec)
    assert model.arm_["label"] == arm.label and model.arm_["params"] == arm.kwargs
    assert model.arm_["fit_s"] >= 0
    loaded = load_bundle(save_bundle(model, tmp_path / "m"))
    assert loaded.arm_ == model.arm_
    assert loaded.callbacks_ == model.callbacks_
    if arm.name in ("fgsm_at", "pgd_at", "trades", "noise", "augment"):
        assert loaded.callbacks_[0]["callback"] == arm.name
    if arm.adversarial:
        assert model.arm_["crafting_s"] > 0
    if arm.name == "gan":
        assert model.arm_["n_synthetic"] > 0 and model.arm_["gates_passed"] is False
    clean, _ = _robust_accuracy(loaded, train, test, 0.05, steps=1)
    assert clean > 0  # the restored model predicts


def test_train_arm_refuses_a_budget_beyond_the_unit(split):
    with pytest.raises(ConfigError, match="larger than any sensible"):
        train_arm("toy", split[0], "pgd_at(eps=2)", train_config=FAST, unit="rel")


def test_gan_arm_refuses_a_generator_that_fails_its_gates(split, one_torch_thread):
    train, _ = split
    with pytest.raises(GANQualityError, match="quality gate"):
        train_arm("toy", train, "gan(iterations=20,stages=1)", train_config=FAST, seed=0)


def test_adversarial_training_makes_the_toy_model_measurably_more_robust(split, one_torch_thread):
    """Same data, seed and loop: PGD-AT at eps_train 0.1 keeps clean accuracy and raises PGD-20 accuracy at 0.1."""
    train, test = split
    base = train_arm("toy", train, "none", train_config=LEARN, seed=0)
    robust = train_arm("toy", train, "pgd_at(eps=0.1)", train_config=LEARN, seed=0)
    clean0, rob0 = _robust_accuracy(base, train, test, 0.1)
    clean1, rob1 = _robust_accuracy(robust, train, test, 0.1)
    assert clean1 >= clean0 - 0.05
    assert rob1 >= rob0 + 0.15, (rob0, rob1)


def test_trades_with_beta_zero_is_standard_training(split, one_torch_thread):
    train, _ = split
    plain = train_arm("toy", train, "none", train_config=FAST, seed=3)
    trades = train_arm("toy", train, "trades(beta=0)", train_config=FAST, seed=3)
    for a, b in zip(plain.state_dict().values(), trades.state_dict().values()):
        torch.testing.assert_close(a, b)


# -- arms in a study ------------------------------------------------------------------------------------------------
ARM_SUITE = dict(models=("toy", "eegnet"), threat_models=("white_box", "gray_box", "control"),
                 white_box=("fgsm", "linf_pgd"), gray_box=("ufgsm",), epsilons=(0.1,), pgd_steps=5,
                 train=FAST, arms=("none", "pgd_at(steps=2)"))


@pytest.fixture(scope="module")
def arm_suite(split, one_torch_thread):
    from eegrobust.harness.suite import run_suite

    train, test = split
    return run_suite(SuiteConfig(**ARM_SUITE), train=train, test=test, progress=False)


def test_every_arm_meets_the_same_attacks_and_is_in_every_row(arm_suite):
    rows = arm_suite.rows
    by_victim = {}
    for r in rows:
        by_victim.setdefault((r["model"], r["arm"]), set()).add((r["threat_model"], r["attack"], r["epsilon"]))
    assert set(by_victim) == {("toy", "none"), ("eegnet", "none"), ("toy+pgd_at(steps=2)", "pgd_at(steps=2)"),
                              ("eegnet+pgd_at(steps=2)", "pgd_at(steps=2)")}
    assert by_victim[("toy", "none")] == by_victim[("toy+pgd_at(steps=2)", "pgd_at(steps=2)")]
    # gray-box substitutes are the undefended models of the other architecture
    gray = {(r["model"], r["substitute"]) for r in rows if r["threat_model"] == "gray_box"}
    assert gray == {("toy", "eegnet"), ("toy+pgd_at(steps=2)", "eegnet"), ("eegnet", "toy"),
                    ("eegnet+pgd_at(steps=2)", "toy")}
    arms = arm_suite.provenance["arms"]
    assert arms["toy+pgd_at(steps=2)/seed0"]["params"] == {"eps": 0.05, "steps": 2, "rel_stepsize": 2.5}
    assert "toy/seed0" not in arms  # an undefended victim has no arm record


def test_defended_victims_are_cached_under_their_own_key(split, tmp_path):
    from eegrobust.harness.cache import VictimCache

    train, _ = split
    cache = VictimCache(tmp_path)
    _, key_a = cache.get(train, "toy", FAST, arm="pgd_at(steps=2)", seed=0)
    _, key_none = cache.get(train, "toy", FAST, seed=0)
    assert key_a != key_none
    again = VictimCache(tmp_path)
    b, key_b = again.get(train, "toy", FAST, arm=Arm.make("pgd_at(steps=2)"), seed=0)
    assert key_b == key_a and again.n_loaded == 1 and again.n_trained == 0
    assert b.arm_["label"] == "pgd_at(steps=2)"


def test_arms_need_training_data_not_given_models(split, toy_victims):
    from eegrobust.harness.suite import run_suite

    train, test = split
    with pytest.raises(ConfigError, match="given models"):
        run_suite(SuiteConfig(**{**ARM_SUITE, "arms": ("none", "trades")}), test=test, train=train,
                  victims={"toy": toy_victims["toy"]}, progress=False)


def test_cli_run_with_arms_and_bad_arms_exit_2(tmp_path, capsys, one_torch_thread):
    from eegrobust.data import make_synthetic_epochs
    from eegrobust.harness.cli import main

    files = tmp_path / "data"
    files.mkdir()
    for sub in (1, 2):
        make_synthetic_epochs(n_trials=40, random_state=sub).save(files / f"sub-0{sub}_epo.fif", verbose="error")
    argv = ["run", "--data", str(files / "sub-*_epo.fif"), "--protocol", "cross-subject", "--models", "toy",
            "--preset", "quick", "--threat", "white", "--attacks", "fgsm", "--eps", "0.1", "--quiet"]
    assert main([*argv, "--arms", "none,pgd_tt", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Did you mean 'pgd_at'" in err, err
    assert main([*argv, "--arms", "trades(beta=-2)", "--out", str(tmp_path / "bad2")]) == 2
    assert "TRADES" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()
    assert main([*argv, "--arms", "none,fgsm_at", "--out", str(tmp_path / "ok")]) == 0
    import pandas as pd

    frame = pd.read_csv(tmp_path / "ok" / "results.csv")
    assert set(frame["arm"]) == {"none", "fgsm_at"} and set(frame["model"]) == {"toy", "toy+fgsm_at"}


def test_report_shows_the_trade_off_per_arm_and_refuses_unverified_robustness(arm_suite, tmp_path):
    import copy

    from eegrobust.harness.report import arm_tables, write_report

    (table,) = arm_tables(arm_suite)
    assert [(r[0], r[1]) for r in table.rows] == [("toy", "none"), ("toy+pgd_at(steps=2)", "pgd_at(steps=2)"),
                                                  ("eegnet", "none"), ("eegnet+pgd_at(steps=2)", "pgd_at(steps=2)")]
    assert all("[" in r[3] and "[" in r[4] for r in table.rows)  # clean and robust with their 95 % intervals
    assert "not verified" not in " ".join(str(c) for r in table.rows for c in r)
    # PGD weaker than FGSM on one arm's rows: that arm's robust accuracy is not reported
    broken = copy.deepcopy(arm_suite)
    for r in broken.rows:
        if r["model"] == "toy+pgd_at(steps=2)" and r["attack"] == "linf_pgd" and r["epsilon"] > 0:
            fgsm = next(x for x in broken.rows if x["model"] == r["model"] and x["attack"] == "fgsm"
                        and x["epsilon"] == r["epsilon"])
            r["adv_rca"] = fgsm["adv_rca"] + 0.2
    (table,) = arm_tables(broken)
    marked = {r[0]: r[4] for r in table.rows}
    assert marked["toy+pgd_at(steps=2)"] == "not verified" and marked["toy"] != "not verified"
    assert "PGD at least as strong as FGSM" in table.caption
    paths = write_report(arm_suite, tmp_path, formats=("md",))
    assert "Defences: clean against robust accuracy per arm" in paths["md"].read_text()


def test_demo_gan_is_a_study_over_arms_and_the_report_shows_the_gates(split, tmp_path, one_torch_thread):
    import argparse

    from eegrobust.harness.cli import gan_demo_study
    from eegrobust.harness.report import report_tables
    from eegrobust.harness.suite import run_suite

    study = gan_demo_study(argparse.Namespace(seeds=None, seed=None, gan_ratio=0.5, force_gan=True))
    assert study["seeds"] == (0, 1, 2)
    assert parse_arms(study["arms"]) == ("none", "gan(force=true,ratio=0.5)", "augment(ratio=0.5)")
    train, test = split
    config = SuiteConfig(models=("toy",), threat_models=("white_box",), white_box=("fgsm",), epsilons=(0.1,),
                         train=FAST, arms=("none", "gan(iterations=20,stages=1,force=true)"))
    with pytest.warns(UserWarning, match="forced"):
        res = run_suite(config, train=train, test=test, progress=False)
    keys = [t.key for t in report_tables(res)["summary"]]
    assert "arms" in keys and "gan-gates" in keys
    (gates,) = [t for t in report_tables(res)["summary"] if t.key == "gan-gates"]
    assert gates.rows[0][1] == "FORCED" and "FORCED AUGMENTATION" in gates.caption
