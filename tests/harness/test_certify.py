"""Randomized smoothing (`harness.certify`): Cohen's CERTIFY in budget space, its radius, and EOT on random models."""

import json

import numpy as np
import pytest
import torch

from eegrobust.attacks import make_attack
from eegrobust.attacks.budget import channel_scale
from eegrobust.data._checks import ConfigError
from eegrobust.harness.arms import train_arm
from eegrobust.harness.certify import (CertifyConfig, SmoothedClassifier, certified_accuracy, certify,
                                       lower_confidence_bound, run_certification)

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
    ({"n": 0}, "n must be an integer >= 1"),
    ({"n0": 2.5}, "n0 must be an integer"),
    ({"alpha": 1.0}, r"alpha must lie in \(0, 1\)"),
    ({"radii": (-1,)}, "radius must be >= 0"),
    ({"unit": "mV"}, "unit must be one of"),
])
def test_bad_certification_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CertifyConfig(**kwargs)


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
    from eegrobust.harness.cli import main
    from eegrobust.models import save_bundle

    from eegrobust.data import make_synthetic_epochs

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
