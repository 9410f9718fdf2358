"""Budget unit and SNR definitions (attacks.budget): demeaned std, pooled SNR, SNR per EEG band."""

import numpy as np
import pytest

from eegrobust.attacks import BANDS, band_snr_db, channel_scale, make_attack, pooled_snr_db
from eegrobust.harness.metrics import perturbation_stats, signal_energy


@pytest.fixture(scope="module")
def raw():
    """Noise-like EEG with large per-trial offsets, as raw consumer-headset epochs (~4200 uV)."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 10, size=(60, 3, 256)) + rng.normal(4200, 300, size=(60, 3, 1))
    return X.astype(np.float32)


def test_rel_unit_is_the_demeaned_std(raw):
    expected = (raw - raw.mean(-1, keepdims=True)).transpose(1, 0, 2).reshape(3, -1).std(1)
    np.testing.assert_allclose(channel_scale(raw), expected, rtol=1e-5)
    assert channel_scale(raw).max() < 11  # offsets (std 300 across trials) do not inflate the budget
    np.testing.assert_array_equal(channel_scale(raw, "uV"), np.ones(3))


@pytest.mark.parametrize("eps", [0.01, 0.05, 0.1, 0.3])
def test_sign_perturbation_snr_is_minus_20_log_eps(raw, eps):
    rng = np.random.default_rng(1)
    delta = eps * channel_scale(raw)[None, :, None] * rng.choice([-1.0, 1.0], size=raw.shape)
    assert pooled_snr_db(raw, delta) == pytest.approx(-20 * np.log10(eps), abs=1e-6)


def test_fgsm_row_snr_within_1_db_on_offset_epochs(raw):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 256, 2))
    with torch.no_grad():
        model[1].weight.mul_(1e-4)  # small logits on 4200 uV inputs: the softmax is not saturated
    with torch.no_grad():
        y = model(torch.from_numpy(raw)).argmax(1).numpy()  # the model's own labels: every trial is attacked
    scale = channel_scale(raw)
    for eps, out in zip((0.05, 0.1), make_attack("fgsm")(model, raw, y, epsilons=(0.05, 0.1))):
        stats = perturbation_stats(raw, out.X_adv, scale, sfreq=128.0)
        assert abs(stats["snr_db"] - (-20 * np.log10(eps))) <= 1.0, stats


def test_snr_pooled_over_attacked_trials_counts_unchanged_ones(raw):
    delta = np.zeros_like(raw)
    delta[:30] = 0.1 * channel_scale(raw)[None, :, None]
    half = pooled_snr_db(raw, delta)
    assert half == pytest.approx(20 + 10 * np.log10(2), abs=0.3)  # half the trials: twice the signal per energy
    stats = perturbation_stats(raw, raw + delta, channel_scale(raw), attacked=np.arange(60),
                               fooled=np.arange(60) < 30)
    assert stats["snr_db"] == pytest.approx(half, abs=0.01)  # float32 round-off of raw + delta at 4200 uV
    assert stats["snr_fooled_db"] == pytest.approx(20, abs=0.3)
    assert stats["n_perturbed"] == 30
    assert pooled_snr_db(raw, np.zeros_like(raw)) == float("inf")


def test_band_snr_puts_energy_in_its_band(raw):
    t = np.arange(raw.shape[-1]) / 128.0
    delta = np.broadcast_to(np.sin(2 * np.pi * 10 * t), raw.shape).astype(np.float64)  # 10 Hz: alpha
    bands = band_snr_db(raw, delta, 128.0)
    assert set(bands) == set(BANDS)
    assert bands["alpha"] < 20 and all(v > 100 for k, v in bands.items() if k != "alpha")  # round-off only
    assert band_snr_db(raw, delta, 50.0)["gamma"] is None  # 30 Hz is above the Nyquist frequency of 25 Hz


def test_row_stats_are_the_pooled_sums_over_attacked_trials(raw):
    """perturbation_stats sums per-trial energies (the clean ones once per cell, `signal_energy`); the SNRs are
    `pooled_snr_db` and `band_snr_db` over the attacked trials, whichever trials changed."""
    rng = np.random.default_rng(2)
    X_adv = raw.copy()
    X_adv[::3] += rng.normal(0, 2, size=X_adv[::3].shape).astype(np.float32)
    attacked, fooled = np.arange(5, 50), np.isin(np.arange(60), [6, 9, 30])
    stats = perturbation_stats(raw, X_adv, channel_scale(raw), attacked=attacked, fooled=fooled, sfreq=128.0)
    delta = X_adv.astype(np.float64) - raw
    assert stats["snr_db"] == pytest.approx(pooled_snr_db(raw[attacked], delta[attacked]), abs=1e-9)
    assert stats["snr_fooled_db"] == pytest.approx(pooled_snr_db(raw[fooled], delta[fooled]), abs=1e-9)
    for band, value in band_snr_db(raw[attacked], delta[attacked], 128.0).items():
        assert stats[f"snr_{band}_db"] == pytest.approx(value, abs=1e-9), band
    assert stats["n_perturbed"] == 20
    reused = perturbation_stats(raw, X_adv, channel_scale(raw), attacked=attacked, fooled=fooled, sfreq=128.0,
                                signal=signal_energy(raw, 128.0))
    assert reused == stats
    none = perturbation_stats(raw, X_adv, channel_scale(raw), attacked=np.zeros(60, bool), sfreq=128.0)
    assert none["snr_db"] == float("inf") and none["snr_alpha_db"] is None
