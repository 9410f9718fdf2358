"""harness.gan: quality gates, gated mixing, the no-leak guarantee, the comparison and the ``gan`` commands."""

import argparse
import copy

import numpy as np
import pytest

from eegrobust.data import ConfigError, DataError, EEGData, ModelFileError, epochs_to_data, make_synthetic_epochs, mix_synthetic
from eegrobust.harness.gan import (
    GANQualityError,
    GANQualityWarning,
    augment_with_gan,
    chance_bound,
    check_gates,
    evaluate_gan,
    format_comparison,
    gan_holdout_split,
    run_gan_comparison,
    sliced_wasserstein,
    train_gan_with_gates,
)
from eegrobust.harness.cli import add_gan_demo_options, add_gan_parser
from eegrobust.harness.cli import main as cli_main
from eegrobust.harness.report import augmentation_tables, write_report
from eegrobust.models import TrainConfig, build_model, fit_model
from eegrobust.models.gan import load_gan

# A small GAN that learns the 10 Hz class signal of make_synthetic_epochs in a few seconds on CPU.
SMALL_GAN = dict(n_stages=2, n_filters=16, latent_dim=16, kernel_size=7, n_iterations=600, lr=2e-3, batch_size=16,
                 show_progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test of this module runs on one torch thread."""


@pytest.fixture(scope="module")
def learnable(_one_torch_thread):
    return epochs_to_data(make_synthetic_epochs(n_trials=120, snr=1.5, random_state=0))


@pytest.fixture(scope="module")
def _gated(learnable):
    return train_gan_with_gates(learnable, SMALL_GAN, seed=0)


@pytest.fixture
def gated(_gated):
    return copy.deepcopy(_gated)


@pytest.fixture(scope="module")
def _label_blind(learnable):
    """A generator trained with shuffled labels: it ignores the label it is given."""
    rng = np.random.default_rng(0)
    shuffled = EEGData(learnable.X, rng.permutation(learnable.y), learnable.sfreq, learnable.ch_names,
                       learnable.classes)
    gan, _ = train_gan_with_gates(shuffled, {**SMALL_GAN, "n_iterations": 300}, seed=0)
    fit_idx, hold_idx = gan_holdout_split(learnable, 0.2, 0)
    return gan, learnable.subset(fit_idx), learnable.subset(hold_idx)


class _SwappedGAN:
    """Wraps a generator and hands out the other class's trials (a label-swapping generator)."""

    def __init__(self, gan):
        self.gan = gan
        self.ch_names, self.sfreq, self.n_times, self.classes = gan.ch_names, gan.sfreq, gan.n_times, gan.classes

    def sample_data(self, n, label=None, random_state=None):
        data = self.gan.sample_data(n, random_state=random_state)
        return EEGData(data.X, 1 - data.y, data.sfreq, data.ch_names, data.classes, data.is_synthetic)


def _gate(report, name):
    return next(g for g in report["gates"] if g["name"] == name)


def test_gates_pass_on_a_learnable_signal(gated):
    _, report = gated
    failed = [(g["name"], round(g["value"], 3)) for g in report["gates"] if not g["passed"]]
    assert report["passed"], failed
    assert report["class_pattern"]["family"] == "waveform"
    assert report["tstr"]["tstr_acc"] > report["tstr"]["chance_bound"]


def test_gates_fail_on_a_generator_that_ignores_labels(_label_blind):
    gan, fit, holdout = _label_blind
    report = evaluate_gan(gan, fit, holdout, random_state=0)
    assert not report["passed"]
    assert not _gate(report, "class_pattern_corr")["passed"]
    assert not _gate(report, "tstr_above_chance")["passed"]
    with pytest.raises(GANQualityError, match=r"class_pattern_corr = -?0\.\d+ \(needs >= 0.5"):
        check_gates(report)


def test_gates_catch_swapped_labels(gated, learnable):
    gan, _ = gated
    fit_idx, hold_idx = gan_holdout_split(learnable, 0.2, 0)
    swapped = evaluate_gan(_SwappedGAN(gan), learnable.subset(fit_idx), learnable.subset(hold_idx))
    assert _gate(swapped, "class_pattern_corr")["value"] < -0.5
    assert not _gate(swapped, "tstr_above_chance")["passed"]


def test_memorising_generator_fails_memorisation_gate(gated, learnable):
    gan, _ = gated
    fit_idx, hold_idx = gan_holdout_split(learnable, 0.2, 0)
    fit = learnable.subset(fit_idx)

    class Copier(_SwappedGAN):
        def sample_data(self, n, label=None, random_state=None):
            idx = np.random.default_rng(0).choice(fit.n_trials, n)
            return EEGData(fit.X[idx], fit.y[idx], fit.sfreq, fit.ch_names, fit.classes, np.ones(n, bool))

    report = evaluate_gan(Copier(gan), fit, learnable.subset(hold_idx))
    assert _gate(report, "memorisation_ratio")["value"] < 0.2 and not report["passed"]


def test_gate_report_contents(gated):
    _, report = gated
    names = [g["name"] for g in report["gates"]]
    assert names == ["band_power_median_db", "band_power_worst_db", "class_pattern_corr", "tstr_above_chance",
                     "memorisation_ratio", "swd_ratio"]
    assert report["band_power_db"]["bands"] == ["delta", "theta", "mu_alpha", "beta"]
    assert np.shape(report["band_power_db"]["diff_db"]) == (4, 4)
    assert {"tstr_acc", "trtr_acc", "chance_bound"} <= set(report["tstr"])


def test_no_synthetic_trial_reaches_validation_or_test(gated, learnable):
    gan, report = gated
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=1.5, random_state=1))
    test_hash = test.data_hash()
    mixed = augment_with_gan(learnable, gan, 1.0, report=report, random_state=0)
    assert mixed.is_synthetic.sum() == learnable.n_trials and not mixed.is_synthetic[:learnable.n_trials].any()
    config = TrainConfig(max_epochs=2, val_fraction=0.2, seed=0, show_progress=False)
    model = fit_model(build_model("toy", mixed), mixed, config)
    # the decoder validates on real trials only, and exactly on the trials the GAN was held out from
    assert not mixed.is_synthetic[model.val_indices_].any()
    np.testing.assert_array_equal(model.val_indices_, report["holdout_indices"])
    assert test.data_hash() == test_hash and not test.is_synthetic.any()


def test_augmentation_refused_then_forced(_label_blind, learnable):
    gan, fit, holdout = _label_blind
    report = evaluate_gan(gan, fit, holdout, random_state=0)
    with pytest.raises(GANQualityError, match="augmentation refused.*--force-gan"):
        augment_with_gan(learnable, gan, 0.5, report=report)
    with pytest.warns(GANQualityWarning, match="forced"):
        mixed = augment_with_gan(learnable, gan, 0.5, report=report, force=True)
    assert report["forced"] and mixed.is_synthetic.sum() == 60
    with pytest.raises(GANQualityError, match="no gate report"):
        augment_with_gan(learnable, gan, 0.5)


def test_negative_gan_ratio(gated, learnable):
    gan, report = gated
    with pytest.raises(ConfigError, match="gan_ratio must be a number >= 0"):
        augment_with_gan(learnable, gan, -1.0, report=report)
    parser = argparse.ArgumentParser()
    add_gan_demo_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--gan", "--gan-ratio", "-0.5"])
    assert parser.parse_args(["--gan", "--gan-ratio", "0.5"]).gan_ratio == 0.5


def test_gate_helpers():
    y = np.array([0, 1] * 50)
    assert 0.55 < chance_bound(y) < 0.6
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    assert sliced_wasserstein(A, A) == 0 and sliced_wasserstein(A, B + 3) > sliced_wasserstein(A, B)


COMPARISON = dict(models=("toy",), threat_models=("white_box",), white_box=("fgsm",), epsilons=(0.1,),
                  train={"max_epochs": 2, "patience": None})
UNDERTRAINED = {**SMALL_GAN, "n_iterations": 20}  # fails its gates


def test_comparison_refuses_a_failing_gan(learnable):
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=1.5, random_state=1))
    with pytest.warns(GANQualityWarning, match="seed 0: GAN augmentation refused: quality gate"):
        result = run_gan_comparison(COMPARISON, learnable, test, seeds=(0,), gan_ratio=0.5, progress=False,
                                    gan_config=UNDERTRAINED)
    assert {r["model"] for r in result.rows} == {"toy", "toy+augment"}
    info = result.provenance["gan"]["seeds"]["0"]
    assert not info["passed"] and "refused" in info["refused"] and not info["forced"]
    assert "augmentation refused" in format_comparison(result)


def test_comparison_keeps_test_real(learnable, tmp_path):
    test = epochs_to_data(make_synthetic_epochs(n_trials=40, snr=1.5, random_state=1))
    with pytest.warns(GANQualityWarning, match="forced"):
        result = run_gan_comparison(COMPARISON, learnable, test, seeds=(0,), gan_ratio=0.5, force_gan=True,
                                    progress=False, gan_config=UNDERTRAINED)
    assert {r["model"] for r in result.rows} == {"toy", "toy+gan", "toy+augment"}
    assert result.provenance["test_data_hash"] == test.data_hash()
    assert all(r["n_trials"] == test.n_trials for r in result.rows)
    runs = result.provenance["comparison"]["runs"]
    assert runs["gan/seed0"]["n_synthetic"] == 60 and runs["none/seed0"]["n_synthetic"] == 0
    info = result.provenance["gan"]["seeds"]["0"]
    assert info["forced"] and set(info["gates"]) == {"band_power_median_db", "band_power_worst_db",
                                                     "class_pattern_corr", "tstr_above_chance",
                                                     "memorisation_ratio", "swd_ratio"}
    assert "## EEG-GAN augmentation" in format_comparison(result) and "toy+gan" in format_comparison(result)
    # the report shows the gates (and that augmentation was forced) and the arms side by side
    gates, side = augmentation_tables(result)
    assert gates.rows[0][:2] == ["0", "FORCED"] and "FORCED AUGMENTATION" in gates.caption
    assert [row[0] for row in side.rows] == ["toy", "toy+gan", "toy+augment"] and side.header[-1] == "ε=0.1"
    md = write_report(result, tmp_path, ("md",))["md"].read_text()
    assert "EEG-GAN quality gates" in md and "toy+augment" in md


def test_suite_refuses_synthetic_test_trials(learnable):
    from eegrobust.harness.suite import run_suite

    mixed = mix_synthetic(learnable, lambda n, k: learnable.X[learnable.y == k][:n], 0.1)
    with pytest.raises(DataError, match=r"test holds \d+ synthetic trials"):
        run_suite("quick", test=mixed, victims={})


def test_demo_gan_bad_input(capsys):
    assert cli_main(["demo", "--gan", "--gan-ratio", "-1"]) == 2
    assert "--gan-ratio must be a number >= 0" in capsys.readouterr().err
    assert cli_main(["demo", "--quick", "--models", "eegnett"]) == 2
    assert "Did you mean 'eegnet'" in capsys.readouterr().err


def _run_cli(argv):
    parser = argparse.ArgumentParser()
    add_gan_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_train_and_sample(tmp_path):
    import mne

    epochs = make_synthetic_epochs(n_trials=64, snr=1.5, random_state=0)
    epochs.save(tmp_path / "train-epo.fif", verbose="error")
    code = _run_cli(["gan", "train", "--data", str(tmp_path / "train-epo.fif"), "--out", str(tmp_path / "g"),
                     "--stages", "2", "--iterations", "10", "--quiet"])
    assert code in (0, 1)  # 10 iterations may fail a gate; the files are written either way
    assert {"generator.safetensors", "gan.json", "gates.json"} <= {p.name for p in (tmp_path / "g").iterdir()}
    out = tmp_path / "syn-epo.fif"
    assert _run_cli(["gan", "sample", str(tmp_path / "g"), "--n", "6", "--out", str(out),
                     "--data", str(tmp_path / "train-epo.fif")]) == 0
    syn = mne.read_epochs(out, verbose="error")
    assert len(syn) == 6 and syn.ch_names == epochs.ch_names and syn.event_id == epochs.event_id
    assert syn.metadata["is_synthetic"].all()
    other = make_synthetic_epochs(n_trials=8, n_chans=3, random_state=0)
    other.save(tmp_path / "other-epo.fif", verbose="error")
    with pytest.raises(ModelFileError, match="channels"):
        _run_cli(["gan", "sample", str(tmp_path / "g"), "--n", "2", "--out", str(out),
                  "--data", str(tmp_path / "other-epo.fif")])
    assert load_gan(tmp_path / "g").event_id == epochs.event_id


@pytest.mark.slow
def test_scp1_comparison():
    from eegrobust.data import load_bundled

    train, test = (epochs_to_data(e) for e in load_bundled("scp1"))
    config = dict(models=("eegnet",), threat_models=("white_box", "control"), white_box=("fgsm", "linf_pgd"),
                  epsilons=(0.05, 0.1), pgd_steps=10, train={"max_epochs": 20})
    result = run_gan_comparison(config, train, test, seeds=(0,), gan_ratio=1.0, progress=False)
    info = result.provenance["gan"]["seeds"]["0"]
    assert info["passed"], info["refused"]
    assert {r["model"] for r in result.rows} == {"eegnet", "eegnet+gan", "eegnet+augment"}
    assert result.provenance["test_data_hash"] == test.data_hash()
