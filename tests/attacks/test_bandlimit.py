"""Band-limited PGD: the perturbation lies in its band, within the budget; the band and sfreq are checked."""

import numpy as np
import pytest
import torch

from eegrobust.attacks import BandPGD, band_project, channel_scale, make_attack
from eegrobust.attacks.bandlimit import band_linf_project, out_of_band_fraction
from eegrobust.data import ConfigError

SFREQ = 128.0  # the synthetic trials' rate (attack_eval)


def _raises_one_line(exc, match, func, *args, **kwargs):
    with pytest.raises(exc, match=match) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value), str(info.value)


def _spectrum_outside(D, band, sfreq=SFREQ):
    """Largest |FFT| outside ``band`` relative to the largest inside, per trial set."""
    f = np.fft.rfftfreq(D.shape[-1], 1 / sfreq)
    F = np.abs(np.fft.rfft(D, axis=-1))
    inside = (f >= band[0]) & (f <= band[1])
    return F[..., ~inside].max() / F[..., inside].max()


def test_band_project_is_an_exact_projection():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(3, 4, 128, generator=g, dtype=torch.float64)
    p = band_project(delta, SFREQ, (1.0, 40.0))
    assert p.shape == delta.shape and p.dtype == delta.dtype
    torch.testing.assert_close(band_project(p, SFREQ, (1.0, 40.0)), p)  # idempotent
    assert out_of_band_fraction(p, SFREQ, (1.0, 40.0)) < 1e-20
    assert _spectrum_outside(p.numpy(), (1.0, 40.0)) < 1e-12
    assert abs(float(((delta - p) * p).sum())) < 1e-9  # orthogonal


@pytest.mark.parametrize("iters", [0, 1, 5])
def test_band_linf_project_lands_in_band_and_ball(iters):
    z = torch.randn(3, 4, 128, generator=torch.Generator().manual_seed(1))
    d = band_linf_project(z, 0.2, SFREQ, (1.0, 40.0), iters)
    assert float(d.abs().max()) <= 0.2 * (1 + 1e-6)
    assert out_of_band_fraction(d, SFREQ, (1.0, 40.0)) < 1e-12
    np.testing.assert_allclose(d.abs().amax(-1).numpy(), 0.2, rtol=1e-5)  # every signal reaches the ball's edge


@pytest.mark.parametrize("band, iters", [((1.0, 40.0), 5), ((0.1, 4.0), 5), ((8.0, 13.0), 0)])
def test_output_band_limited_and_within_budget(band, iters, trained_eegnet, attack_eval, within_budget):
    X, y = attack_eval.X, attack_eval.y
    attack = BandPGD(band=band, steps=10, proj_iters=iters)
    scale = channel_scale(X)
    outputs = attack(trained_eegnet, X, y, epsilons=(0.3, 1.0), sfreq=SFREQ)
    for out in outputs:
        within_budget(attack, out, X, scale)
        D = (out.X_adv.astype(np.float64) - X) / scale[None, :, None]
        changed = np.any(D != 0, axis=(1, 2))
        if changed.any():
            assert out_of_band_fraction(D[changed], SFREQ, band) < 1e-9  # float32 round-off of X + delta
            assert out.info["out_of_band_energy"] < 1e-9
        assert out.info["band_hz"] == list(band) and out.info["sfreq"] == SFREQ
    assert np.any(outputs[-1].X_adv != X)


def test_attack_lowers_accuracy_of_the_toy(trained_toy, attack_eval, acc):
    X, y = attack_eval.X, attack_eval.y
    (out,) = BandPGD(band=(1.0, 40.0), steps=10)(trained_toy, X, y, epsilons=(0.5,), sfreq=SFREQ)
    assert acc(trained_toy, out.X_adv, y) < acc(trained_toy, X, y) - 0.3


def test_epsilon_zero_identity_and_seeded(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    attack = BandPGD(steps=5)
    a = attack(trained_toy, X, y, epsilons=(0.0, 0.3), sfreq=SFREQ, random_state=3)
    b = attack(trained_toy, X, y, epsilons=(0.0, 0.3), sfreq=SFREQ, random_state=3)
    np.testing.assert_array_equal(a[0].X_adv, X)
    np.testing.assert_array_equal(a[1].X_adv, b[1].X_adv)


def test_constructor_sfreq_used_when_call_gives_none(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    (a,) = BandPGD(steps=3, sfreq=SFREQ)(trained_toy, X, y, epsilons=(0.3,))
    (b,) = BandPGD(steps=3, sfreq=1000.0)(trained_toy, X, y, epsilons=(0.3,), sfreq=SFREQ)  # the call wins
    np.testing.assert_array_equal(a.X_adv, b.X_adv)


@pytest.mark.parametrize("band, exc", [((40.0, 1.0), ConfigError), ((-1.0, 4.0), ConfigError),
                                       ((1.0, float("inf")), ConfigError), ((4.0, 4.0), ConfigError),
                                       ("1-40", TypeError), ((1.0,), TypeError), ((1, 2, 3), TypeError),
                                       ((True, 4.0), TypeError), (None, TypeError)],
                         ids=["reversed", "negative", "inf", "empty", "str", "one", "three", "bool", "none"])
def test_bad_band_refused_at_construction(band, exc):
    _raises_one_line(exc, r"BandPGD band must be two .*got .*Example: band=\(1\.0, 40\.0\)\.", BandPGD, band=band)


def test_band_above_nyquist_named(trained_toy, attack_eval):
    _raises_one_line(ConfigError, r"band_pgd band=\(1\.0, 80\.0\) Hz must lie inside \(0, 64\) Hz.*sfreq=128 Hz; "
                     r"lower it to 64 Hz or less", make_attack("band_pgd", band=(1.0, 80.0)), trained_toy,
                     attack_eval.X, attack_eval.y, epsilons=(0.1,), sfreq=SFREQ)


def test_band_without_frequency_bin_named(trained_toy, attack_eval):
    """128 samples at 128 Hz: bins every 1 Hz, none in 0.2-0.8 Hz."""
    _raises_one_line(ConfigError, r"holds no frequency bin of a 128-sample trial .*every 1 Hz\); widen the band",
                     BandPGD(band=(0.2, 0.8)), trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,),
                     sfreq=SFREQ)


def test_missing_sfreq_named(trained_toy, attack_eval):
    _raises_one_line(ConfigError, r"band_pgd needs the sampling rate: pass sfreq=\.\.\. \(the cell runner does\)",
                     make_attack("band_pgd"), trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,))


@pytest.mark.parametrize("sfreq", [0.0, -128.0])
def test_bad_sfreq_named(sfreq):
    _raises_one_line(ConfigError, rf"BandPGD sfreq must be a finite number in \(0, inf\), got {sfreq!r}", BandPGD,
                     sfreq=sfreq)
