"""Randomized smoothing (`harness.certify`): Cohen's CERTIFY in budget space, its radius, and EOT on random models."""

import json

import numpy as np
import pytest
import torch
from eegrobust.attacks import make_attack
from eegrobust.attacks.budget import channel_scale
from eegrobust.data._checks import ConfigError
from eegrobust.harness.arms import train_arm
from eegrobust.harness.certify import (
    PRESETS,
    CertifyConfig,
    SmoothedClassifier,
    certified_accuracy,
    certify,
    lower_confidence_bound,
    min_samples,
    run_certification,
)

SIGMA = 0.5


@pytest.fixture(scope="module")
def noisy_toy(split, one_torch_thread):
    """A toy model trained with the noise arm at the sigma it is certified at."""
    train, _ = split
    return train_arm("toy", train, f"noise(sigma={SIGMA})", train_config={"max_epochs": 40, "patience": None}, seed=0)


def test_clopper_pearson_lower_bound():
    assert lower_confidence_bound(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100))
    assert lower_confidence_bound(0, 100, 0.001) == 0.0
    for k in (10, 50, 90):
        assert lower_confidence_bound(k, 100, 0.001) < k / 100
        assert lower_confidence_bound(k, 100, 0.05) > lower_confidence_bound(k, 100, 0.001)
    assert CertifyConfig(n=100_000).max_radius_factor == pytest.approx(3.81, abs=0.01)


@pytest.mark.parametrize("kwargs, match", [
    ({"sigmas": (0.0,)}, "sigma must be > 0"),
    ({"sigmas": (-0.25, 0.5)}, "sigma must be > 0"),
    ({"sigmas": ()}, "at least one sigma"),
    ({"sigmas": ("x",)}, "sigma must be a number"),
    ({"n": 0}, r"n \(--n\) must be an integer >= 1, got 0"),
    ({"n0": 2.5}, r"n0 \(--n0\) must be an integer"),
    ({"n0": 0}, r"n0 \(--n0\) must be an integer >= 1, got 0"),
    ({"batch_size": 0}, r"batch_size \(--batch-size\) must be an integer >= 1, got 0; it is the noisy copies"),
    ({"batch_size": -4}, r"batch_size \(--batch-size\) must be an integer >= 1, got -4"),
    ({"n_trials": 0}, r"n_trials \(--n-trials\) must be None \(all trials\) or an integer >= 1, got 0"),
    ({"alpha": 1.0}, r"alpha \(--alpha\) must lie in \(0, 1\), got 1.0"),
    ({"alpha": 1.5}, r"alpha \(--alpha\) must lie in \(0, 1\), got 1.5"),
    ({"alpha": 0.0}, r"alpha \(--alpha\) must lie in \(0, 1\)"),
    ({"alpha": -0.01}, r"alpha \(--alpha\) must lie in \(0, 1\), got -0.01"),
    ({"alpha": float("nan")}, r"alpha \(--alpha\) must lie in \(0, 1\), got nan"),
    ({"alpha": "0.001"}, r"alpha \(--alpha\) must lie in \(0, 1\), got '0.001'"),
    ({"n": 5}, r"n \(--n\) = 5 is too few samples to certify any trial at alpha=0.001: .* give n >= 10 "),
    ({"n": 9}, r"give n >= 10 "),
    ({"n": 4, "alpha": 0.05}, r"at alpha=0.05: .* give n >= 5 "),
    ({"radii": (-1,)}, "radius must be >= 0"),
    ({"unit": "mV"}, "unit must be one of"),
])
def test_bad_certification_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CertifyConfig(**kwargs)


def test_min_samples_is_the_smallest_n_whose_best_case_bound_exceeds_one_half():
    for alpha in (0.001, 0.01, 0.05, 0.25, 0.5, 0.9, 1e-10, 1e-300):
        n = min_samples(alpha)
        assert lower_confidence_bound(n, n, alpha) > 0.5
        assert n == 1 or lower_confidence_bound(n - 1, n - 1, alpha) <= 0.5
    assert min_samples(0.001) == 10  # 0.001 ** (1 / 10) = 0.501, 0.001 ** (1 / 9) = 0.464
    assert min_samples(0.25) == 3  # 0.25 ** (1 / 2) is exactly 0.5: no certificate (Cohen: pA > 1/2)
    CertifyConfig(n=10)  # the smallest n at alpha 0.001 is accepted, and so are the presets
    assert PRESETS["quick"].n == 1000 and PRESETS["cohen"].n == 100_000
    with pytest.raises(ConfigError, match="give n >= 3"):
        CertifyConfig(n=2, alpha=0.25)


def test_certify_checks_its_arguments_and_certifies_from_min_samples_on(split):
    """The public `certify` refuses what `CertifyConfig` refuses; at ``n = min_samples(alpha)`` a model that never
    changes its mind is certified (``pA = alpha ** (1 / n) > 1/2``, radius > 0)."""
    _, test = split
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(test.n_chans * test.n_times, 2))
    scale = channel_scale(test.X, "rel")
    X, y = test.X[:2], test.y[:2]
    with pytest.raises(ConfigError, match="give n >= 10"):
        certify(model, X, y, sigma=0.5, scale=scale, n0=10, n=5)
    with pytest.raises(ConfigError, match=r"batch_size \(--batch-size\)"):
        certify(model, X, y, sigma=0.5, scale=scale, n0=10, n=100, batch_size=0)
    with pytest.raises(ConfigError, match="sigma must be > 0"):
        certify(model, X, y, sigma=0.0, scale=scale, n0=10, n=100)
    with torch.no_grad():  # one class whatever the noise: k = n
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([5.0, 0.0]))
    out = certify(model, X, y, sigma=0.5, scale=scale, n0=3, n=min_samples(0.001), alpha=0.001)
    assert out["p_lower"] == pytest.approx([0.001 ** 0.1] * 2)
    assert (out["prediction"] == 0).all() and (out["radius"] > 0).all()


def _smoothed_prediction(model, X, scale, n=2000, seed=1):
    """Monte-Carlo prediction of the smoothed classifier (majority vote of ``n`` noisy copies) per trial."""
    torch.manual_seed(seed)
    smoothed = SmoothedClassifier(model, SIGMA, scale).eval()
    with torch.no_grad():
        return np.array([np.bincount(smoothed(torch.as_tensor(x[None]).expand(n, *x.shape)).argmax(1).numpy(),
                                     minlength=2).argmax() for x in X])


def _eot_l2_pgd(model, X, y, radii_uv_budget, scale, steps=30, eot=16):
    """L2 PGD on the smoothed classifier (EOT: expected cross-entropy over ``eot`` noise draws per step), each trial
    projected onto its own L2 ball in budget space."""
    scale_t = torch.as_tensor(scale, dtype=torch.float32).reshape(1, -1, 1)
    smoothed = SmoothedClassifier(model, SIGMA, scale).eval()
    model.requires_grad_(False)
    S = torch.as_tensor(X) / scale_t
    r = torch.as_tensor(radii_uv_budget, dtype=torch.float32).reshape(-1, 1, 1)
    delta = torch.zeros_like(S)
    labels = torch.as_tensor(y)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = sum(torch.nn.functional.cross_entropy(smoothed((S + delta) * scale_t), labels) for _ in range(eot))
        (grad,) = torch.autograd.grad(loss, delta)
        g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, 1, 1)
        delta = (delta.detach() + 0.25 * r * g)
        norms = delta.flatten(1).norm(dim=1).reshape(-1, 1, 1)
        delta = delta * torch.minimum(torch.ones_like(norms), r / norms.clamp_min(1e-12))
    return ((S + delta.detach()) * scale_t).numpy()


def test_no_attack_inside_the_certified_radius_changes_the_smoothed_prediction(noisy_toy, split):
    """The certificate: L2 PGD with EOT at 0.95 of each trial's radius leaves g's prediction unchanged, while the
    same attack at 4x the radius changes it on some trials (so the attack is not a weak one)."""
    _, test = split
    X, y = test.X[:40], test.y[:40]
    scale = channel_scale(test.X, "rel")
    out = certify(noisy_toy, X, y, sigma=SIGMA, scale=scale, n0=100, n=2000, alpha=0.001, seed=0)
    ok = out["prediction"] >= 0
    assert ok.sum() >= 30 and out["radius"][ok].min() > 0
    assert certified_accuracy(out, [0.0])[0] >= 0.8
    Xc, pc, rc = X[ok], out["prediction"][ok], out["radius"][ok]
    inside = _eot_l2_pgd(noisy_toy, Xc, pc, 0.95 * rc, scale)
    assert (_smoothed_prediction(noisy_toy, inside, scale) == pc).all()
    outside = _eot_l2_pgd(noisy_toy, Xc, pc, 4.0 * rc, scale)
    assert (_smoothed_prediction(noisy_toy, outside, scale) != pc).sum() >= 3


def test_a_randomized_model_is_attacked_with_eot(noisy_toy, split):
    _, test = split
    X, y = test.X[:40], test.y[:40]
    smoothed = SmoothedClassifier(noisy_toy, SIGMA, channel_scale(test.X, "rel")).eval()
    with pytest.raises(ConfigError, match="eot_iter >= 2"):
        make_attack("apgd_ce", steps=10)(smoothed, X, y, epsilons=(0.3,))
    (adv,) = make_attack("apgd_ce", steps=20, eot_iter=8)(smoothed, X, y, epsilons=(0.3,))
    scale = channel_scale(test.X, "rel")
    clean = (_smoothed_prediction(noisy_toy, X, scale, n=200) == y).mean()
    robust = (_smoothed_prediction(noisy_toy, adv.X_adv, scale, n=200) == y).mean()
    assert robust < clean - 0.2, (clean, robust)


def test_run_certification_rows_record_n0_n_alpha_and_units(noisy_toy, split):
    _, test = split
    res = run_certification(noisy_toy, test, CertifyConfig(sigmas=(0.25, 0.5), n0=50, n=500, radii=(0, 0.5),
                                                           n_trials=12))
    assert len(res["rows"]) == 4 and len(res["trials"]) == 24
    row = res["rows"][0]
    assert (row["n0"], row["n"], row["alpha"], row["norm"], row["reduced_samples"]) == (50, 500, 0.001, "l2", True)
    assert row["radius_rms"] == pytest.approx(row["radius"] / np.sqrt(test.n_chans * test.n_times))
    accs = {(r["sigma"], r["radius"]): r["certified_accuracy"] for r in res["rows"]}
    assert accs[(0.5, 0.5)] <= accs[(0.5, 0.0)]
    json.dumps(res)  # JSON-ready


def test_cli_certify(noisy_toy, tmp_path, capsys):
    from eegrobust.data import make_synthetic_epochs
    from eegrobust.harness.cli import main
    from eegrobust.models import save_bundle

    bundle = save_bundle(noisy_toy, tmp_path / "model")
    data = tmp_path / "test-epo.fif"
    make_synthetic_epochs(n_trials=120, random_state=0).save(data, verbose="error")
    out = tmp_path / "cert"
    argv = ["certify", str(bundle), "--data", str(data), "--n0", "20", "--n", "200", "--sigma", "0.5",
            "--n-trials", "6", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    res = json.loads((out / "certification.json").read_text())
    assert res["config"]["n"] == 200 and res["provenance"]["arm"]["name"] == "noise"
    assert (out / "certification.csv").is_file()
    assert "N0=20, N=200" in capsys.readouterr().out
    assert main([*argv[:-3], "--sigma", "0", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sigma must be > 0" in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("option, match", [
    (["--n", "5"], r"n \(--n\) = 5 is too few samples .* alpha=0.001.* give n >= 10"),
    (["--quick", "--n", "9"], r"n \(--n\) = 9 is too few samples"),
    (["--batch-size", "0"], r"batch_size \(--batch-size\) must be an integer >= 1, got 0"),
    (["--n0", "0"], r"n0 \(--n0\) must be an integer >= 1, got 0"),
    (["--n-trials", "0"], r"n_trials \(--n-trials\) must be None \(all trials\) or an integer >= 1, got 0"),
    (["--alpha", "-0.1"], r"alpha \(--alpha\) must lie in \(0, 1\), got -0.1"),
    (["--alpha", "nan"], r"alpha \(--alpha\) must lie in \(0, 1\), got nan"),
    (["--alpha", "1"], r"alpha \(--alpha\) must lie in \(0, 1\), got 1.0"),
    (["--sigma", "-0.5"], r"sigma must be > 0 .* got -0.5; give e.g. --sigma"),
    (["--sigma", "0.5,0"], r"sigma must be > 0 .* got 0.0; give e.g. --sigma"),
])
def test_cli_certify_refuses_bad_settings_in_one_line(tmp_path, capsys, option, match):
    """Checked before the model or the data are read: a missing model file would be the first error otherwise."""
    import re

    from eegrobust.data import make_synthetic_epochs
    from eegrobust.harness.cli import main

    data = tmp_path / "test-epo.fif"
    make_synthetic_epochs(n_trials=8, random_state=0).save(data, verbose="error")
    (tmp_path / "model").mkdir()
    out = tmp_path / "cert"
    assert main(["certify", str(tmp_path / "model"), "--data", str(data), "--quiet", "--out", str(out), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
    assert not out.exists()


def test_study_option_certifies_every_victim_of_every_fold(tmp_path):
    import pandas as pd
    from eegrobust.data import make_synthetic_epochs
    from eegrobust.harness.study import StudyConfig, run_study

    files = tmp_path / "data"
    files.mkdir()
    for sub in (1, 2):
        make_synthetic_epochs(n_trials=40, random_state=sub).save(files / f"sub-0{sub}_epo.fif", verbose="error")
    study = StudyConfig(data=(str(files / "sub-*_epo.fif"),), protocol="cross-subject", models=("toy",),
                        preset="quick", threat=("white",), attacks=("fgsm",), eps=(0.1,), arms="none,noise",
                        suite={"train": {"max_epochs": 3, "patience": None}}, out=str(tmp_path / "study"),
                        certify={"sigmas": [0.5], "n0": 20, "n": 100, "n_trials": 4, "radii": [0, 0.25]})
    res = run_study(study, progress=False)
    frame = pd.read_csv(res.out / "certification.csv")
    assert len(frame) == 2 * 2 * 2  # folds x victims (arms) x radii
    assert set(frame["arm"]) == {"none", "noise"} and set(frame["n"]) == {100}
    assert res.result.provenance["certification"]["config"]["n0"] == 20
    with pytest.raises(ConfigError, match="sigma must be > 0"):
        StudyConfig(dataset="scp1", certify={"sigmas": [0]})
    with pytest.raises(ConfigError, match="Did you mean 'sigmas'"):
        StudyConfig(dataset="scp1", certify={"sigma": [0.5]})
