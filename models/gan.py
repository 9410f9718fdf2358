"""EEG-GAN: a class-conditional progressive Wasserstein GAN for multichannel epochs, and its safe saving.

The generator works on per-channel standardized EEG at a reduced working rate (``GANConfig.work_sfreq``) and grows
over the time axis in 1 to 3 stages; :meth:`EEGGAN.sample` maps its output back to the data's rate and to
microvolts. The harness gates what it makes before any of it reaches a decoder (``harness.gan``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data._checks import ConfigError, DataError, ModelFileError, check_option, check_random_state
from ..data.containers import EEGData

from ._config import ConfigMixin
from ._seed import seeded

logger = logging.getLogger(__name__)

FORMAT_NAME = "eegrobust-gan"
FORMAT_VERSION = 1
WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "gan.json"
MIN_BASE_LEN = 8  # samples of the first stage: room for the kernels and the minibatch-std channel


@dataclass(frozen=True)
class GANConfig(ConfigMixin):
    """Settings of :func:`fit_gan`; validated when built, round-trips through :meth:`to_dict`/:meth:`from_dict`.

    Parameters
    ----------
    n_stages : int, default=3
        Progressive stages over the time axis, 1 to 3; each doubles the length, new blocks fade in linearly.
    n_filters : int, default=32
        Feature maps of every convolution.
    latent_dim : int, default=32
        Size of the noise vector (the class embedding has the same size).
    kernel_size : int, default=9
        Temporal kernel length in samples at the working rate.
    work_sfreq : float or None, default=64.0
        Rate the GAN works at, in Hz; data sampled faster is resampled (polyphase, anti-aliased) before training and
        the output is resampled back. None, or a rate at or above the data's, works at the data's rate.
    n_iterations : int or None, default=1200
        Generator steps over all stages (split evenly). None: the stages share ``max_minutes`` by wall time.
    max_minutes : float or None, default=None
        Wall-time cap. With ``n_iterations`` it stops training early (results then depend on machine speed);
        without, it is the time schedule.
    n_critic : int, default=1
        Critic steps per generator step (EEG-GAN and ProGAN use 1).
    batch_size : int, default=32
        Real trials per step, drawn class-balanced: every class needs ``batch_size // n_classes`` trials.
    lr : float, default=1e-3
        Adam learning rate of both nets (betas 0 and 0.99, as in EEG-GAN).
    gp_weight : float, default=10.0
        Weight of the one-sided gradient penalty ``max(0, ||grad|| - 1) ** 2``.
    drift : float, default=1e-3
        Weight of the drift term ``critic(real) ** 2``.
    fade_fraction : float, default=0.5
        Share of each stage after the first over which the new block fades in.
    noise : bool, default=True
        Add per-sample noise, scaled per feature map by learned weights, after every generator convolution (Karras
        et al. 2019): the stochastic detail of alpha and beta activity.
    critic_diff : bool, default=True
        Give the critic the temporal derivative of its input too, scaled to unit variance, so that low-power high
        frequencies weigh in its distance as much as the slow potentials that dominate the variance.
    spectral_weight : float, default=1.0
        Weight of a spectral feature-matching term in the generator loss (Salimans et al. 2016): the squared
        difference between the log power spectrum of each batch of fakes and that of the real training trials, per
        channel and frequency bin (Hann-windowed periodogram). 0 turns it off.
    seed : int, default=0
        Seed of the initial weights, batches and noise; the global RNGs are not changed.
    show_progress : bool, default=True
        Show a tqdm progress bar.
    """

    n_stages: int = 3
    n_filters: int = 32
    latent_dim: int = 32
    kernel_size: int = 9
    work_sfreq: float | None = 64.0
    n_iterations: int | None = 1200
    max_minutes: float | None = None
    n_critic: int = 1
    batch_size: int = 32
    lr: float = 1e-3
    gp_weight: float = 10.0
    drift: float = 1e-3
    fade_fraction: float = 0.5
    noise: bool = True
    critic_diff: bool = True
    spectral_weight: float = 1.0
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self):
        def is_int(v, low):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low

        def is_num(v, low, high=math.inf):
            return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and low <= v <= high

        checks = [
            (is_int(self.n_stages, 1) and self.n_stages <= 3, "n_stages must be 1, 2 or 3"),
            (is_int(self.n_filters, 1), "n_filters must be an int >= 1"),
            (is_int(self.latent_dim, 1), "latent_dim must be an int >= 1"),
            (is_int(self.kernel_size, 1) and self.kernel_size % 2 == 1, "kernel_size must be an odd int >= 1"),
            (self.work_sfreq is None or is_num(self.work_sfreq, 1e-3), "work_sfreq must be None or a rate > 0"),
            (self.n_iterations is None or is_int(self.n_iterations, self.n_stages),
             "n_iterations must be None or an int >= n_stages"),
            (self.max_minutes is None or is_num(self.max_minutes, 1e-6), "max_minutes must be None or > 0"),
            (self.n_iterations is not None or self.max_minutes is not None,
             "n_iterations and max_minutes cannot both be None"),
            (is_int(self.n_critic, 1), "n_critic must be an int >= 1"),
            (is_int(self.batch_size, 2), "batch_size must be an int >= 2"),
            (is_num(self.lr, 1e-12), "lr must be a number > 0"),
            (is_num(self.gp_weight, 0), "gp_weight must be >= 0"),
            (is_num(self.drift, 0), "drift must be >= 0"),
            (is_num(self.fade_fraction, 0, 1), "fade_fraction must lie in [0, 1]"),
            (isinstance(self.noise, (bool, np.bool_)), "noise must be a bool"),
            (isinstance(self.critic_diff, (bool, np.bool_)), "critic_diff must be a bool"),
            (is_num(self.spectral_weight, 0), "spectral_weight must be >= 0"),
            (is_int(self.seed, 0), "seed must be an int >= 0"),
            (isinstance(self.show_progress, (bool, np.bool_)), "show_progress must be a bool"),
        ]
        problems = [f"{msg}, got {getattr(self, msg.split()[0])!r}" for ok, msg in checks if not ok]
        if problems:
            raise ConfigError("invalid GANConfig: " + "; ".join(problems) + ".")



# -- layers (Karras et al. 2018, as used by EEG-GAN) ---------------------------------------------------------------
class EqualizedConv1d(nn.Conv1d):
    """Conv1d with weights drawn from N(0, 1) and scaled by He's constant at run time (equalized learning rate)."""

    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = math.sqrt(2.0 / (in_channels * kernel_size))

    def forward(self, x):
        return F.conv1d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Linear):
    """Linear layer with the equalized learning rate."""

    def __init__(self, in_features, out_features, gain=2.0):
        super().__init__(in_features, out_features)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = math.sqrt(gain / in_features)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x, eps=1e-8):
    """Normalize the feature vector at every time point to unit mean square (generator only)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_std(x):
    """Append the batch standard deviation, averaged over features and time, as one constant channel."""
    std = x.std(dim=0, unbiased=False).mean().expand(x.shape[0], 1, x.shape[2])
    return torch.cat([x, std], dim=1)


def _act(x):
    return F.leaky_relu(x, 0.2)


class Generator(nn.Module):
    """Progressive conditional generator: ``(z, y)`` to standardized EEG at the length of a stage.

    Parameters
    ----------
    n_chans, n_classes : int
        Output channels and number of classes.
    lengths : tuple of int
        Samples at each stage, doubling; the last is the working length.
    n_filters, latent_dim, kernel_size : int
        See :class:`GANConfig`.
    """

    def __init__(self, n_chans, n_classes, lengths, n_filters, latent_dim, kernel_size, noise=True):
        super().__init__()
        self.lengths, self.n_filters, self.latent_dim = tuple(lengths), n_filters, latent_dim
        self.noise = noise
        self.noise_scale = nn.ParameterList(nn.Parameter(torch.zeros(1, n_filters, 1)) for _ in lengths)
        self.embed = nn.Embedding(n_classes, latent_dim)
        nn.init.normal_(self.embed.weight)
        self.project = EqualizedLinear(2 * latent_dim, n_filters * lengths[0], gain=2.0 / 16)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv1d(n_filters, n_filters, kernel_size) for _ in range(1 if k == 0 else 2)])
            for k in range(len(lengths)))
        self.to_eeg = nn.ModuleList(EqualizedConv1d(n_filters, n_chans, 1) for _ in lengths)

    def _block(self, k, h, gen):
        if k > 0:
            h = F.interpolate(h, size=self.lengths[k], mode="linear", align_corners=False)
        for conv in self.blocks[k]:
            h = conv(h)
            if self.noise:
                h = h + self.noise_scale[k] * torch.randn(len(h), 1, h.shape[2], generator=gen).to(h.device)
            h = pixel_norm(_act(h))
        return h

    def forward(self, z, y, stage, alpha=1.0, generator=None):
        h = self.project(pixel_norm(torch.cat([z, self.embed(y)], dim=1)))
        h = pixel_norm(_act(h.view(len(z), self.n_filters, self.lengths[0])))
        h = self._block(0, h, generator)
        for k in range(1, stage + 1):
            prev, h = h, self._block(k, h, generator)
        out = self.to_eeg[stage](h)
        if stage > 0 and alpha < 1:
            old = F.interpolate(self.to_eeg[stage - 1](prev), size=self.lengths[stage], mode="linear",
                                align_corners=False)
            out = alpha * out + (1 - alpha) * old
        return out


class Critic(nn.Module):
    """Progressive projection critic (Miyato & Koyama 2018): ``psi(phi(x)) + <embed(y), phi(x)>``."""

    def __init__(self, n_chans, n_classes, lengths, n_filters, kernel_size, diff=True):
        super().__init__()
        self.lengths, self.diff = tuple(lengths), diff
        self.register_buffer("diff_scale", torch.ones(len(lengths)))
        n_in = 2 * n_chans if diff else n_chans
        self.from_eeg = nn.ModuleList(EqualizedConv1d(n_in, n_filters, 1) for _ in lengths)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv1d(n_filters, n_filters, kernel_size) for _ in range(2)])
            for _ in lengths[1:])
        self.final_conv = EqualizedConv1d(n_filters + 1, n_filters, kernel_size)
        self.final_dense = EqualizedLinear(n_filters * lengths[0], n_filters)
        self.out = EqualizedLinear(n_filters, 1, gain=1.0)
        self.embed = nn.Embedding(n_classes, n_filters)
        nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(n_filters))

    def _block(self, k, h):
        for conv in self.blocks[k - 1]:
            h = _act(conv(h))
        return F.adaptive_avg_pool1d(h, self.lengths[k - 1])

    def _from_eeg(self, k, x):
        if self.diff:  # the temporal derivative, scaled to unit variance: high frequencies weigh as much as slow ones
            x = torch.cat([x, F.pad(x.diff(dim=2), (1, 0)) * self.diff_scale[k]], dim=1)
        return _act(self.from_eeg[k](x))

    def forward(self, x, y, stage, alpha=1.0):
        h = self._from_eeg(stage, x)
        if stage > 0:
            h = self._block(stage, h)
            if alpha < 1:
                old = self._from_eeg(stage - 1, F.adaptive_avg_pool1d(x, self.lengths[stage - 1]))
                h = alpha * h + (1 - alpha) * old
            for k in range(stage - 1, 0, -1):
                h = self._block(k, h)
        h = _act(self.final_conv(minibatch_std(h)))
        phi = _act(self.final_dense(h.flatten(1)))
        return self.out(phi).squeeze(1) + (self.embed(y) * phi).sum(1)


# -- the fitted generator --------------------------------------------------------------------------------------------
def _resample_ratio(sfreq: float, work_sfreq: float | None) -> Fraction:
    """Working rate / data rate as a small fraction (1 when the GAN works at the data's rate)."""
    if work_sfreq is None or work_sfreq >= sfreq:
        return Fraction(1)
    return Fraction(work_sfreq / sfreq).limit_denominator(64)


def stage_lengths(n_times: int, sfreq: float, config: GANConfig | dict | None = None) -> tuple[int, ...]:
    """Samples at each stage for epochs of ``n_times`` at ``sfreq`` (the last is the working length).

    Raises
    ------
    DataError
        When the first stage would be shorter than ``MIN_BASE_LEN`` samples; the message names the minimum
        ``n_times``.
    """
    config = GANConfig.make(config)
    ratio = _resample_ratio(float(sfreq), config.work_sfreq)
    work_len = math.ceil(n_times * ratio)
    lengths = tuple(math.ceil(work_len / 2 ** (config.n_stages - 1 - k)) for k in range(config.n_stages))
    if lengths[0] < MIN_BASE_LEN:
        need = math.floor((MIN_BASE_LEN - 1) * 2 ** (config.n_stages - 1) / ratio) + 1
        raise DataError(
            f"epochs of {n_times} samples ({n_times / sfreq:.3g} s) are too short for n_stages={config.n_stages} at "
            f"a working rate of {float(sfreq * ratio):g} Hz: the GAN needs n_times >= {need} ({need / sfreq:.3g} s). "
            "Use fewer stages, a higher work_sfreq or longer epochs.")
    return lengths


class EEGGAN(nn.Module):
    """A fitted EEG-GAN generator with what it needs to make epochs like its training data.

    Build it with :func:`fit_gan` or :func:`load_gan`. Attributes ``ch_names``, ``sfreq``, ``n_times``, ``classes``
    and ``event_id`` describe the data; ``mean`` and ``std`` (buffers, µV, shape (n_chans, 1)) are the training
    set's channel statistics; ``stage`` and ``alpha`` say how far progressive growing got. After :func:`fit_gan`,
    ``history_`` (per-iteration losses every 10 steps), ``fit_seconds_`` and ``train_data_hash_`` are set.
    """

    def __init__(self, generator: Generator, *, config: GANConfig, ch_names, sfreq, n_times, classes,
                 event_id=None, stage=None, alpha=1.0):
        super().__init__()
        self.generator = generator
        self.config = GANConfig.make(config)
        self.ch_names, self.classes = tuple(ch_names), tuple(classes)
        self.sfreq, self.n_times = float(sfreq), int(n_times)
        self.event_id = dict(event_id) if event_id else {c: i + 1 for i, c in enumerate(self.classes)}
        self.stage = self.config.n_stages - 1 if stage is None else int(stage)
        self.alpha = float(alpha)
        self.register_buffer("mean", torch.zeros(len(self.ch_names), 1))
        self.register_buffer("std", torch.ones(len(self.ch_names), 1))

    @property
    def n_chans(self) -> int:
        return len(self.ch_names)

    def _labels(self, n, label, rng) -> np.ndarray:
        if label is None:
            return rng.permutation(np.arange(n) % len(self.classes))
        if isinstance(label, str):
            label = check_option("label", label, self.classes, error=DataError)
            label = self.classes.index(label)
        if not isinstance(label, (int, np.integer)) or not 0 <= label < len(self.classes):
            raise DataError(f"label must be a class name in {self.classes} or an index in "
                            f"[0, {len(self.classes) - 1}], got {label!r}.")
        return np.full(n, int(label))

    def sample(self, n: int, label=None, random_state=None, *, batch_size: int = 256) -> np.ndarray:
        """Draw ``n`` synthetic trials in microvolts, shape (n, n_chans, n_times), float32.

        ``label`` (a class name or index) fixes the class; None balances the classes (see :meth:`sample_data` for
        the labels). ``random_state`` seeds the noise.
        """
        return self._sample(n, label, random_state, batch_size)[0]

    def _sample(self, n, label, random_state, batch_size=256):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"n must be an int >= 1, got {n!r}.")
        rng = check_random_state(random_state)
        y = self._labels(int(n), label, rng)
        z = rng.standard_normal((int(n), self.generator.latent_dim)).astype(np.float32)
        noise = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = [self.generator(torch.from_numpy(z[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size]),
                                      self.stage, self.alpha, noise).numpy() for i in range(0, int(n), batch_size)]
        finally:
            self.train(was_training)
        X = self._from_work(np.concatenate(out))
        return X * self.std.numpy() + self.mean.numpy(), y

    def _from_work(self, X: np.ndarray) -> np.ndarray:
        """Working rate (and a shorter stage) back to the data's rate and length."""
        from scipy.signal import resample_poly

        work_len = self.generator.lengths[-1]
        if X.shape[-1] != work_len:  # stopped before the last stage: stretch to the working length
            X = F.interpolate(torch.from_numpy(X), size=work_len, mode="linear", align_corners=False).numpy()
        ratio = _resample_ratio(self.sfreq, self.config.work_sfreq)
        if ratio != 1:
            X = resample_poly(X, ratio.denominator, ratio.numerator, axis=-1)
        return np.ascontiguousarray(X[..., :self.n_times], dtype=np.float32)

    def sample_data(self, n: int, label=None, random_state=None) -> EEGData:
        """Draw ``n`` trials as :class:`~data.EEGData` with ``is_synthetic`` all True (classes balanced if no label)."""
        X, y = self._sample(n, label, random_state)
        return EEGData(X, y, self.sfreq, self.ch_names, self.classes, np.ones(len(y), bool))

    def sample_epochs(self, n: int, label=None, random_state=None, *, tmin: float = 0.0):
        """Draw ``n`` trials as an ``mne.EpochsArray`` (volts) with the training data's channels, sfreq and event_id.

        The epochs are marked synthetic: ``epochs.metadata["is_synthetic"]`` is True for every trial and
        ``info["description"]`` says where they came from.
        """
        import mne
        import pandas as pd

        X, y = self._sample(n, label, random_state)
        info = mne.create_info(list(self.ch_names), self.sfreq, ch_types="eeg")
        info["description"] = f"synthetic EEG from an EEG-GAN generator (eegrobust {FORMAT_NAME})"
        codes = np.array([self.event_id[self.classes[k]] for k in y])
        events = np.column_stack([np.arange(len(y)) * self.n_times, np.zeros(len(y), int), codes])
        metadata = pd.DataFrame({"is_synthetic": np.ones(len(y), bool),
                                 "label": [self.classes[k] for k in y]})
        return mne.EpochsArray(X.astype(np.float64) * 1e-6, info, events=events, event_id=dict(self.event_id),
                               tmin=tmin, metadata=metadata, on_missing="ignore", verbose="error")

    def extra_repr(self) -> str:
        return (f"n_chans={self.n_chans}, n_times={self.n_times}, sfreq={self.sfreq:g}, classes={self.classes}, "
                f"stage={self.stage}, alpha={self.alpha:g}")


# -- training ----------------------------------------------------------------------------------------------------------
def _check_fit_data(train: EEGData, config: GANConfig) -> None:
    if not isinstance(train, EEGData):
        raise TypeError(f"train must be an EEGData, got {type(train).__name__}; use data.epochs_to_data(epochs).")
    if train.is_synthetic.any():
        raise DataError(f"train holds {int(train.is_synthetic.sum())} synthetic trials; fit the GAN on real "
                        "training trials only.")
    per_class = config.batch_size // train.n_classes
    counts = np.bincount(train.y, minlength=train.n_classes)
    for name, count in zip(train.classes, counts):
        if count < max(per_class, 1):
            raise DataError(
                f"class {name!r} has {count} training trial(s) but a class-balanced batch of {config.batch_size} "
                f"needs {per_class} per class; lower batch_size to <= {count * train.n_classes} or add trials.")


def _to_work(X: np.ndarray, ratio: Fraction) -> np.ndarray:
    from scipy.signal import resample_poly

    if ratio == 1:
        return X.astype(np.float32)
    return resample_poly(X, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


class _Schedule:
    """Stage and fade-in weight from the iteration count, or from wall time when no count is given."""

    def __init__(self, config: GANConfig):
        self.n_stages, self.fade = config.n_stages, config.fade_fraction
        self.n_iter = config.n_iterations
        self.max_s = None if config.max_minutes is None else 60.0 * config.max_minutes
        self.t0 = time.perf_counter()

    def position(self, it: int):
        """(stage, alpha, done) at iteration ``it``."""
        elapsed = time.perf_counter() - self.t0
        if self.n_iter is not None:
            frac, done = it / self.n_iter, it >= self.n_iter or (self.max_s is not None and elapsed >= self.max_s)
        else:
            frac, done = elapsed / self.max_s, elapsed >= self.max_s
        stage = min(int(frac * self.n_stages), self.n_stages - 1)
        within = frac * self.n_stages - stage
        alpha = 1.0 if stage == 0 or self.fade == 0 else min(1.0, within / self.fade)
        return stage, alpha, done


def log_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Log mean periodogram over trials, shape (n_chans, n_freqs): mean-removed, Hann-windowed."""
    x = (x - x.mean(dim=2, keepdim=True)) * torch.hann_window(x.shape[2], periodic=False, dtype=x.dtype)
    return torch.log(torch.fft.rfft(x, dim=2).abs().pow(2).mean(dim=0) + 1e-8)


def _gradient_penalty(critic, real, fake, y, stage, alpha, gen):
    eps = torch.rand(len(real), 1, 1, generator=gen).to(real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed, y, stage, alpha).sum(), mixed, create_graph=True)
    return F.relu(grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def _balanced_batch(by_class, per_class, gen):
    idx = torch.cat([members[torch.randperm(len(members), generator=gen)[:per_class]] for members in by_class])
    return idx


def fit_gan(train: EEGData, config: GANConfig | dict | None = None, *, event_id=None, device="cpu") -> EEGGAN:
    """Train a class-conditional EEG-GAN on the real trials of ``train``.

    Parameters
    ----------
    train : EEGData
        Real training trials in microvolts (a synthetic trial raises). Validation and test trials must not be in
        it: the harness splits first (``harness.gan``).
    config : GANConfig, dict or None, default=None
        None uses ``GANConfig()``: for bundled SCP1 about 100 to 135 CPU seconds on one torch thread, 100 to 200 s
        of wall time on the shared 2-core machine (``bench/gan.json``).
    event_id : dict of str to int, optional
        Event codes of the classes for :meth:`EEGGAN.sample_epochs`; default ``{class: index + 1}``.
    device : str or torch.device, default="cpu"
        Where to train ("cuda" on a GPU). Random draws come from one CPU generator on every device, so a seed
        gives the same draws anywhere.

    Returns
    -------
    gan : EEGGAN
        In eval mode, on the CPU.

    Raises
    ------
    DataError
        A class with fewer trials than a class-balanced batch needs, epochs too short for ``n_stages`` (the message
        names the minimum), or synthetic trials in ``train``.

    Notes
    -----
    Losses follow EEG-GAN [1]_: Wasserstein critic loss with the one-sided gradient penalty and a drift term;
    progressive growing, equalized learning rate, pixel norm in the generator and minibatch standard deviation in
    the critic follow Karras et al. [2]_; the critic is a projection discriminator [3]_ and the generator embeds the
    label. Beyond EEG-GAN, and each switchable in :class:`GANConfig`: noise inputs in the generator [4]_, the
    temporal derivative as a second critic input, and a spectral feature-matching term [5]_; without them the
    generator missed SCP1's band power by 4 to 7 dB. Real trials reach each stage through an anti-aliased
    polyphase resampler. Everything runs under ``models._seed.seeded(config.seed)``: the caller's generators (CPU and CUDA)
    are restored.

    References
    ----------
    .. [1] Hartmann, K. G., Schirrmeister, R. T., & Ball, T. (2018). EEG-GAN: Generative adversarial networks for
       electroencephalographic (EEG) brain signals. arXiv:1806.01875.
    .. [2] Karras, T., Aila, T., Laine, S., & Lehtinen, J. (2018). Progressive growing of GANs for improved quality,
       stability, and variation. ICLR.
    .. [3] Miyato, T., & Koyama, M. (2018). cGANs with projection discriminator. ICLR.
    .. [4] Karras, T., Laine, S., & Aila, T. (2019). A style-based generator architecture for generative adversarial
       networks. CVPR.
    .. [5] Salimans, T., Goodfellow, I., Zaremba, W., Cheung, V., Radford, A., & Chen, X. (2016). Improved
       techniques for training GANs. NeurIPS.
    """
    config = GANConfig.make(config)
    _check_fit_data(train, config)
    lengths = stage_lengths(train.n_times, train.sfreq, config)
    t0 = time.perf_counter()
    mean = train.X.mean(axis=(0, 2), dtype=np.float64)[:, None]
    std = np.maximum(train.X.std(axis=(0, 2), dtype=np.float64)[:, None], 1e-6)
    work = _to_work((train.X - mean) / std, _resample_ratio(train.sfreq, config.work_sfreq))
    device = torch.device(device)
    real = [torch.from_numpy(_to_work(work, Fraction(1, 2 ** (len(lengths) - 1 - k)))[..., :n]).to(device)
            for k, n in enumerate(lengths)]
    y_all = torch.from_numpy(train.y)
    by_class = [torch.nonzero(y_all == k).flatten() for k in range(train.n_classes)]
    per_class = max(config.batch_size // train.n_classes, 1)
    with seeded(config.seed):
        gen = torch.Generator().manual_seed(config.seed)
        generator = Generator(train.n_chans, train.n_classes, lengths, config.n_filters, config.latent_dim,
                              config.kernel_size, config.noise)
        critic = Critic(train.n_chans, train.n_classes, lengths, config.n_filters, config.kernel_size,
                        config.critic_diff)
        generator, critic = generator.to(device), critic.to(device)
        critic.diff_scale.copy_(torch.stack([1 / r.diff(dim=2).std().clamp_min(1e-6) for r in real]))
        history, stage, alpha = _train_loop(generator, critic, real, y_all, by_class, per_class, config, gen)
    gan = EEGGAN(generator.cpu(), config=config, ch_names=train.ch_names,
                 sfreq=train.sfreq, n_times=train.n_times, classes=train.classes, event_id=event_id, stage=stage,
                 alpha=alpha)
    gan.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
    gan.std.copy_(torch.as_tensor(std, dtype=torch.float32))
    gan.history_, gan.fit_seconds_, gan.train_data_hash_ = history, time.perf_counter() - t0, train.data_hash()
    return gan.eval()


def _train_loop(generator, critic, real, y_all, by_class, per_class, config, gen):
    betas = (0.0, 0.99)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas)
    opt_c = torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas)
    schedule, history = _Schedule(config), []
    device = real[0].device
    spectra = [log_spectrum(r) for r in real]
    total = config.n_iterations or None
    bar = tqdm(total=total, desc="fit EEG-GAN", disable=not config.show_progress, leave=False)
    it, stage, alpha = 0, 0, 1.0
    while True:
        stage, alpha, done = schedule.position(it)
        if done:
            break
        for _ in range(config.n_critic):
            idx = _balanced_batch(by_class, per_class, gen)
            xr, yb = real[stage][idx.to(device)], y_all[idx].to(device)
            with torch.no_grad():
                z = torch.randn(len(idx), config.latent_dim, generator=gen).to(device)
                xf = generator(z, yb, stage, alpha, gen)
            d_real, d_fake = critic(xr, yb, stage, alpha), critic(xf, yb, stage, alpha)
            gp = _gradient_penalty(critic, xr, xf, yb, stage, alpha, gen)
            loss_c = d_fake.mean() - d_real.mean() + config.gp_weight * gp + config.drift * d_real.pow(2).mean()
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
        critic.requires_grad_(False)
        fake = generator(torch.randn(len(idx), config.latent_dim, generator=gen).to(device), yb, stage, alpha,
                         gen)
        loss_g = -critic(fake, yb, stage, alpha).mean()
        if config.spectral_weight > 0:
            loss_g = loss_g + config.spectral_weight * (log_spectrum(fake) - spectra[stage]).pow(2).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        critic.requires_grad_(True)
        if it % 10 == 0:
            w_dist = float((d_real.mean() - d_fake.mean()).detach())
            history.append({"iteration": it, "stage": stage, "alpha": round(alpha, 4),
                            "loss_critic": float(loss_c.detach()), "loss_generator": float(loss_g.detach()),
                            "wasserstein": w_dist})
            bar.set_postfix(stage=stage, alpha=f"{alpha:.2f}", w=f"{w_dist:.3f}")
            logger.debug("iteration %d: %s", it, history[-1])
        it += 1
        bar.update()
    bar.close()
    if config.n_iterations is not None and it < config.n_iterations:
        warnings.warn(f"EEG-GAN training hit max_minutes={config.max_minutes} after {it} of {config.n_iterations} "
                      f"iterations (stage {stage + 1} of {config.n_stages}).", UserWarning, stacklevel=3)
    return history, stage, alpha


# -- saving ----------------------------------------------------------------------------------------------------------
def save_gan(gan: EEGGAN, path) -> Path:
    """Write ``gan`` to the directory ``path``: ``generator.safetensors`` (weights and channel statistics) and
    ``gan.json`` (format, config, channels, sfreq, n_times, classes, event_id, stage, history). Returns the path.

    Each file is written to a temporary file in ``path`` and renamed, so a reader never sees half a file; files are
    readable by others (0644 under the usual umask), as results are."""
    from safetensors.torch import save_file

    if not isinstance(gan, EEGGAN):
        raise TypeError(f"gan must be an EEGGAN (from models.fit_gan), got {type(gan).__name__}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": gan.config.to_dict(),
            "ch_names": list(gan.ch_names), "sfreq": gan.sfreq, "n_times": gan.n_times, "classes": list(gan.classes),
            "event_id": gan.event_id, "stage": gan.stage, "alpha": gan.alpha,
            "lengths": list(gan.generator.lengths), "train_data_hash": getattr(gan, "train_data_hash_", None),
            "fit_seconds": getattr(gan, "fit_seconds_", None), "history": getattr(gan, "history_", None)}
    text = json.dumps(meta, indent=1, allow_nan=False) + "\n"
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in gan.state_dict().items()}
    _write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT_NAME}))
    _write_atomic(path / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))
    return path


def _write_atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary file next to ``path``, make it 0666 minus the umask, rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: another user's audit could not read the generator
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_gan(path, *, ch_names=None, sfreq=None) -> EEGGAN:
    """Load a generator saved by :func:`save_gan`; with ``ch_names`` / ``sfreq``, check they match the data's.

    Raises
    ------
    ModelFileError
        A missing or malformed ``gan.json``, a weights file that is not safetensors, or channels or sampling rate
        that differ from ``ch_names`` / ``sfreq``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    path = path.parent if path.is_file() else path
    file = path / CONFIG_FILE
    if not file.is_file():
        raise ModelFileError(f"no {CONFIG_FILE} in {path}; is it a generator folder written by models.save_gan?")
    try:
        meta = json.loads(file.read_text())
        if not isinstance(meta, dict):
            raise ModelFileError(f"{file} holds a JSON {type(meta).__name__}, not the generator's description "
                                 "(an object); re-save the generator with models.save_gan.")
        if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
            raise ModelFileError(f"{file} has format {meta.get('format')!r} version {meta.get('format_version')!r}; "
                                 f"expected {FORMAT_NAME!r} version {FORMAT_VERSION}.")
        config = GANConfig.from_dict({**meta["config"], "show_progress": False})
        _check_match(meta, ch_names, sfreq, path)
        generator = Generator(len(meta["ch_names"]), len(meta["classes"]), meta["lengths"], config.n_filters,
                              config.latent_dim, config.kernel_size, config.noise)
        gan = EEGGAN(generator.cpu(), config=config, ch_names=meta["ch_names"], sfreq=meta["sfreq"],
                     n_times=meta["n_times"], classes=meta["classes"], event_id=meta["event_id"],
                     stage=meta["stage"], alpha=meta["alpha"])
        gan.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=True)
    except ModelFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, AttributeError, RuntimeError, RecursionError,
            SafetensorError) as err:
        raise ModelFileError(f"could not load the generator in {path} ({type(err).__name__}: {err}); re-save it "
                             "with models.save_gan.") from err
    gan.history_, gan.train_data_hash_ = meta.get("history"), meta.get("train_data_hash")
    return gan.eval()


def _check_match(meta, ch_names, sfreq, path):
    if ch_names is not None and list(ch_names) != list(meta["ch_names"]):
        raise ModelFileError(f"the generator in {path} makes channels {meta['ch_names']} but the data have "
                             f"{list(ch_names)}; use a generator trained on data with these channels, in this order.")
    if sfreq is not None and not math.isclose(float(sfreq), float(meta["sfreq"]), rel_tol=1e-6):
        raise ModelFileError(f"the generator in {path} makes {meta['sfreq']:g} Hz epochs but the data are sampled at "
                             f"{float(sfreq):g} Hz; resample the data or train a generator on them.")
