"""Learnable synthetic EEG epochs for tests and docs (the class signal sits in one channel under noise)."""

from __future__ import annotations

import mne
import numpy as np

from ._checks import ConfigError, check_random_state

SIGNAL_FREQ = 10.0  # Hz, the class-carrying sinusoid in channel 0
NOISE_STD_UV = 10.0  # µV, white Gaussian noise in every channel


def make_synthetic_epochs(n_trials=48, n_chans=4, n_times=128, sfreq=128.0, n_classes=2, snr=1.0,
                          random_state=0) -> mne.EpochsArray:
    """Make balanced epochs whose class is a 10 Hz sinusoid in channel 0.

    Every channel carries white Gaussian noise of ``NOISE_STD_UV`` (10 µV). Channel 0 adds a 10 Hz sinusoid of
    amplitude ``snr * NOISE_STD_UV`` whose phase is ``2 * pi * label / n_classes``: with two classes its sign is
    the label. A linear model on channel 0 separates the classes.

    Parameters
    ----------
    n_trials : int, default=48
        Number of epochs; classes get ``n_trials // n_classes`` each, the first ``n_trials % n_classes`` one more.
    n_chans : int, default=4
        Number of EEG channels, named ``EEG000``, ``EEG001``, ...
    n_times : int, default=128
        Samples per epoch.
    sfreq : float, default=128.0
        Sampling frequency in Hz; above 20 Hz so the 10 Hz signal is below Nyquist.
    n_classes : int, default=2
        Number of classes, at least 2.
    snr : float, default=1.0
        Sinusoid amplitude divided by the noise standard deviation (0 gives pure noise).
    random_state : int | np.random.Generator | None, default=0
        Seed of the noise and the trial order; the same int gives the same epochs.

    Returns
    -------
    epochs : mne.EpochsArray
        Data in volts (as MNE stores EEG), ``event_id = {"class0": 1, "class1": 2, ...}``, ``tmin=0``.
    """
    _check_params(n_trials, n_chans, n_times, sfreq, n_classes, snr)
    rng = check_random_state(random_state)
    y = rng.permutation(np.arange(n_trials) % n_classes)
    t = np.arange(n_times) / sfreq
    phase = 2 * np.pi * y[:, None] / n_classes
    X = rng.normal(0.0, NOISE_STD_UV, size=(n_trials, n_chans, n_times))
    X[:, 0] += snr * NOISE_STD_UV * np.sin(2 * np.pi * SIGNAL_FREQ * t[None, :] + phase)
    info = mne.create_info([f"EEG{i:03d}" for i in range(n_chans)], float(sfreq), ch_types="eeg")
    events = np.column_stack([np.arange(n_trials) * n_times, np.zeros(n_trials, int), y + 1])
    event_id = {f"class{k}": k + 1 for k in range(n_classes)}
    return mne.EpochsArray(X * 1e-6, info, events=events, event_id=event_id, tmin=0.0, verbose="error")


def _check_params(n_trials, n_chans, n_times, sfreq, n_classes, snr):
    problems = []
    for name, value, low in (("n_trials", n_trials, n_classes if isinstance(n_classes, int) else 2),
                             ("n_chans", n_chans, 1), ("n_times", n_times, 2), ("n_classes", n_classes, 2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            problems.append(f"{name} must be an int >= {low}, got {value!r}")
    if not isinstance(sfreq, (int, float)) or not sfreq > 2 * SIGNAL_FREQ:
        problems.append(
            f"sfreq must be > {2 * SIGNAL_FREQ:g} Hz (the class signal is {SIGNAL_FREQ:g} Hz), got {sfreq!r}"
        )
    if not isinstance(snr, (int, float)) or not snr >= 0:
        problems.append(f"snr must be a number >= 0, got {snr!r}")
    if problems:
        raise ConfigError("; ".join(problems) + ".")
