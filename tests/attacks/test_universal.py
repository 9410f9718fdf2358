"""Universal perturbation: one delta for every trial, fitted on attacker data only, within the budget."""

import numpy as np
import pytest

from eegrobust.attacks import UniversalPerturbation, channel_scale, make_attack
from eegrobust.data import ConfigError, EEGData


def _raises_one_line(exc, match, func, *args, **kwargs):
    with pytest.raises(exc, match=match) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value), str(info.value)


def _deltas(out, X, scale):
    return (out.X_adv.astype(np.float64) - X) / scale[None, :, None]


def test_same_delta_on_every_trial_within_budget(trained_eegnet, attack_train, attack_eval, within_budget):
    X, y = attack_eval.X, attack_eval.y
    attack = UniversalPerturbation(fit_data=attack_train, epochs=5)
    scale = channel_scale(X)
    for out in attack(trained_eegnet, X, y, epsilons=(0.1, 0.5), scale=scale):
        within_budget(attack, out, X, scale)
        D = _deltas(out, X, scale)
        np.testing.assert_allclose(D, np.broadcast_to(D[:1], D.shape), rtol=0, atol=1e-5)
        assert np.abs(D).max() > 0.5 * out.epsilon  # sign steps reach well into the ball
        assert 0.0 <= out.info["fit_fooling_rate"] <= 1.0 and out.info["n_fit_trials"] == attack_train.n_trials


def test_fits_on_attacker_data_only(trained_eegnet, attack_train, attack_eval):
    """The delta ignores the evaluation trials and their labels, and changes with the attacker's data."""
    X, y = attack_eval.X, attack_eval.y
    scale = channel_scale(X)
    attack = UniversalPerturbation(fit_data=attack_train, epochs=3)
    (full,) = attack(trained_eegnet, X, y, epsilons=(0.3,), scale=scale)
    (half,) = attack(trained_eegnet, X[:12], 1 - y[:12], epsilons=(0.3,), scale=scale)  # other trials, wrong labels
    np.testing.assert_allclose(_deltas(half, X[:12], scale)[0], _deltas(full, X, scale)[0], atol=1e-5)
    other = UniversalPerturbation(fit_data=attack_train.subset(np.arange(32)), epochs=3)
    (out,) = other(trained_eegnet, X, y, epsilons=(0.3,), scale=scale)
    assert not np.allclose(_deltas(out, X, scale)[0], _deltas(full, X, scale)[0], atol=1e-3)


def test_attack_lowers_accuracy_of_the_toy(trained_toy, attack_train, attack_eval, acc):
    X, y = attack_eval.X, attack_eval.y
    (out,) = UniversalPerturbation(fit_data=attack_train, epochs=5)(trained_toy, X, y, epsilons=(0.5,))
    assert acc(trained_toy, out.X_adv, y) < acc(trained_toy, X, y) - 0.3
    assert out.info["fit_fooling_rate"] > 0.3


@pytest.mark.parametrize("epsilons", [(0.1,), (0.0,)])
def test_missing_fit_data_named(epsilons, trained_toy, attack_eval):
    _raises_one_line(ConfigError, r"uap needs attacker data to fit on: build it with make_attack\('uap', fit_data=",
                     make_attack("uap"), trained_toy, attack_eval.X, attack_eval.y, epsilons=epsilons)


def test_fit_data_must_be_eegdata(attack_train):
    _raises_one_line(TypeError, r"UniversalPerturbation fit_data must be an EEGData .*got ndarray",
                     UniversalPerturbation, fit_data=attack_train.X)


@pytest.mark.parametrize("chans, times, match", [(3, 128, r"3 channels x 128 samples .* have 4 x 128"),
                                                 (4, 100, r"4 channels x 100 samples .* have 4 x 128")])
def test_fit_data_shape_must_match(chans, times, match, trained_toy, attack_train, attack_eval):
    d = attack_train
    fit = EEGData(d.X[:, :chans, :times], d.y, d.sfreq, d.ch_names[:chans], d.classes)
    _raises_one_line(ConfigError, rf"uap fit_data has {match}; fit on trials of the same montage",
                     UniversalPerturbation(fit_data=fit), trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,))


def test_fit_data_sharing_evaluation_trials_refused(trained_toy, attack_eval):
    _raises_one_line(ConfigError, r"uap fit_data shares 8 trial\(s\) with the evaluation trials",
                     UniversalPerturbation(fit_data=attack_eval.subset(np.arange(8))), trained_toy, attack_eval.X,
                     attack_eval.y, epsilons=(0.1,))


def test_fit_data_sfreq_must_match(trained_toy, attack_train, attack_eval):
    _raises_one_line(ConfigError, r"uap fit_data is sampled at 128 Hz but the evaluation trials at 250 Hz",
                     UniversalPerturbation(fit_data=attack_train), trained_toy, attack_eval.X, attack_eval.y,
                     epsilons=(0.1,), sfreq=250.0)


def test_repr_summarises_fit_data(attack_train):
    text = repr(UniversalPerturbation(fit_data=attack_train, epochs=2))
    assert text == ("UniversalPerturbation(fit_data=<EEGData 64 trials x 4 x 128>, epochs=2, batch_size=32, "
                    "rel_stepsize=2.5, random_start=True)")
