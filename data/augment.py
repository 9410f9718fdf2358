"""Augmentation of a training set: mixing in synthetic trials, and a braindecode transform baseline.

Both only ever touch training data: the harness splits first and augments the training part, and the trials they
add are marked ``is_synthetic`` so that the training loop neither validates on them nor takes its standardization
statistics from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import ConfigError, DataError, check_random_state
from .containers import EEGData


def check_ratio(ratio, name: str = "ratio") -> float:
    """Return ``ratio`` as a float if it is a finite number >= 0; else raise ConfigError naming it."""
    ok = isinstance(ratio, (int, float, np.number)) and not isinstance(ratio, bool) and np.isfinite(ratio)
    if not ok or ratio < 0:
        raise ConfigError(f"{name} must be a number >= 0 (synthetic trials per real training trial), got {ratio!r}.")
    return float(ratio)


def class_quotas(n_total: int, n_classes: int, random_state=0) -> np.ndarray:
    """Split ``n_total`` trials evenly over ``n_classes``; the remainder goes to randomly drawn classes."""
    rng = check_random_state(random_state)
    quotas = np.full(n_classes, n_total // n_classes)
    quotas[rng.permutation(n_classes)[: n_total % n_classes]] += 1
    return quotas


def mix_synthetic(real: EEGData, generated, ratio: float, random_state=0) -> EEGData:
    """Append ``round(ratio * n_real)`` synthetic trials, balanced by class, to the real training trials.

    Parameters
    ----------
    real : EEGData
        Training trials (the training part of a split, never validation or test data). Its real trials are
        counted for the ratio.
    generated : EEGData or callable
        A pool of synthetic trials to draw from without replacement, or a callable ``generated(n, label)`` that
        returns ``n`` trials of class index ``label`` as an array of shape (n, n_chans, n_times) in microvolts
        (for example ``lambda n, k: gan.sample(n, k, random_state=rng)``).
    ratio : float
        Synthetic trials per real trial, >= 0. 0 returns ``real`` unchanged.
    random_state : int | np.random.Generator | None, default=0
        Seed of the draw from the pool and of which classes get the remainder.

    Returns
    -------
    mixed : EEGData
        The trials of ``real`` first, in their order (so a validation split drawn from the real trials of
        ``mixed`` is the one drawn from ``real``), then the synthetic trials, with ``is_synthetic`` True.

    Raises
    ------
    ConfigError
        ``ratio`` is negative or not a number.
    DataError
        The pool's channels, sampling rate, window or classes differ from ``real``'s, a pool trial is not marked
        synthetic, or the pool has too few trials of a class.
    """
    if not isinstance(real, EEGData):
        raise TypeError(f"real must be an EEGData, got {type(real).__name__}.")
    ratio = check_ratio(ratio)
    rng = check_random_state(random_state)
    n_total = round(ratio * int((~real.is_synthetic).sum()))
    if n_total == 0:
        return real
    quotas = class_quotas(n_total, real.n_classes, rng)
    if isinstance(generated, EEGData):
        X_syn, y_syn = _draw_from_pool(real, generated, quotas, rng)
    elif callable(generated):
        X_syn, y_syn = _draw_from_callable(real, generated, quotas)
    else:
        raise TypeError(f"generated must be an EEGData pool or a callable (n, label) -> array, got "
                        f"{type(generated).__name__}.")
    # synthetic trials belong to the subject(s) of the real trials they were mixed into (the first one's keys)
    first = real.metadata.iloc[:1]
    syn_meta = pd.DataFrame({c: np.repeat(first[c].to_numpy(), len(y_syn)) for c in ("subject", "session", "run")})
    syn_meta["is_synthetic"] = True
    metadata = pd.concat([real.metadata, syn_meta], ignore_index=True)
    return EEGData(np.concatenate([real.X, X_syn]), np.concatenate([real.y, y_syn]), real.sfreq, real.ch_names,
                   real.classes, np.concatenate([real.is_synthetic, np.ones(len(y_syn), bool)]), metadata, real.ch_pos)


def _draw_from_pool(real, pool, quotas, rng):
    mismatch = [f"{name} {a!r} vs {b!r}" for name, a, b in (
        ("channels", pool.ch_names, real.ch_names), ("sfreq", pool.sfreq, real.sfreq),
        ("n_times", pool.n_times, real.n_times), ("classes", pool.classes, real.classes)) if a != b]
    if mismatch:
        raise DataError("the synthetic pool does not match the real trials: " + "; ".join(mismatch) + ".")
    if not pool.is_synthetic.all():
        raise DataError(f"the pool holds {int((~pool.is_synthetic).sum())} trials not marked is_synthetic; "
                        "mix only generator output (e.g. EEGGAN.sample_data).")
    chosen = []
    for label, quota in enumerate(quotas):
        members = np.flatnonzero(pool.y == label)
        if len(members) < quota:
            raise DataError(f"the synthetic pool has {len(members)} trials of class {real.classes[label]!r}, "
                            f"{quota} are needed; sample a larger pool.")
        chosen.append(rng.permutation(members)[:quota])
    idx = np.concatenate(chosen)
    return pool.X[idx], pool.y[idx]


def _draw_from_callable(real, generate, quotas):
    parts, labels = [], []
    for label, quota in enumerate(quotas):
        if quota == 0:
            continue
        X = np.asarray(generate(int(quota), label), dtype=np.float32)
        if X.shape != (quota, real.n_chans, real.n_times):
            raise DataError(f"generated(n={quota}, label={label}) returned shape {X.shape}, expected "
                            f"({quota}, {real.n_chans}, {real.n_times}).")
        parts.append(X)
        labels.append(np.full(quota, label))
    return np.concatenate(parts), np.concatenate(labels)


def synthetic_mask(epochs) -> np.ndarray:
    """``is_synthetic`` of each epoch of an ``mne.Epochs``: True where ``epochs.metadata["is_synthetic"]`` says so."""
    metadata = getattr(epochs, "metadata", None)
    if metadata is None or "is_synthetic" not in metadata:
        return np.zeros(len(epochs), bool)
    return metadata["is_synthetic"].to_numpy(bool)


class BatchAugmentation:
    """``fit_model`` callback: append transformed copies of part of every training batch (braindecode transforms).

    The transforms run on standardized trials (the model's own standardization statistics) and the copies go back
    to microvolts, so masking fills with the channel mean rather than with 0 µV. They only ever see training
    batches: ``fit_model`` calls ``on_batch_begin`` for training batches only, never for validation trials.

    Parameters
    ----------
    ratio : float, default=1.0
        Augmented copies per trial of the batch (``round(ratio * batch)`` copies of randomly drawn trials), the
        counterpart of ``gan_ratio``.
    transforms : tuple of str, default=("ftsurrogate", "smooth_time_mask")
        Applied in order: ``"ftsurrogate"`` (braindecode ``FTSurrogate``, Schwabedal et al. 2018) and
        ``"smooth_time_mask"`` (``SmoothTimeMask``, Mohsenvand et al. 2020), as compared by Rommel et al. (2022).
    probability : float, default=0.5
        Probability that each transform is applied to a copy.
    mask_fraction : float, default=0.1
        Length of the time mask as a share of the window.
    random_state : int, default=0
        Seed of the transforms and of which trials are copied.

    References
    ----------
    .. [1] Rommel, C., Paillard, J., Moreau, T., & Gramfort, A. (2022). Data augmentation for learning predictive
       models on EEG: a systematic comparison. Journal of Neural Engineering, 19(6), 066020.
    """

    TRANSFORMS = ("ftsurrogate", "smooth_time_mask")

    def __init__(self, *, ratio=1.0, transforms=TRANSFORMS, probability=0.5, mask_fraction=0.1, random_state=0):
        self.ratio = ratio
        self.transforms = transforms
        self.probability = probability
        self.mask_fraction = mask_fraction
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"BatchAugmentation(ratio={self.ratio!r}, transforms={tuple(self.transforms)!r}, "
                f"probability={self.probability!r}, mask_fraction={self.mask_fraction!r}, "
                f"random_state={self.random_state!r})")

    def to_dict(self) -> dict:
        """What `models.fit_model` records of this callback (``model.callbacks_``)."""
        return {"callback": "augment", "ratio": self.ratio, "transforms": list(self.transforms),
                "probability": self.probability, "mask_fraction": self.mask_fraction,
                "random_state": self.random_state if isinstance(self.random_state, (int, type(None)))
                else repr(self.random_state)}

    def on_train_begin(self, model, train):
        import torch
        from braindecode.augmentation import Compose, FTSurrogate, SmoothTimeMask

        from ._checks import check_option

        check_ratio(self.ratio)
        for name in self.transforms:
            check_option("transform", name, self.TRANSFORMS)
        if not 0 <= self.probability <= 1 or not 0 < self.mask_fraction < 1:
            raise ConfigError(f"probability must lie in [0, 1] and mask_fraction in (0, 1), got "
                              f"{self.probability!r} and {self.mask_fraction!r}.")
        seed = int(check_random_state(self.random_state).integers(2**31 - 1))
        build = {
            "ftsurrogate": lambda: FTSurrogate(self.probability, random_state=seed),
            "smooth_time_mask": lambda: SmoothTimeMask(
                self.probability, mask_len_samples=max(1, int(self.mask_fraction * train.n_times)),
                random_state=seed + 1),
        }
        self.transform_ = Compose([build[name]() for name in self.transforms])
        self.generator_ = torch.Generator().manual_seed(seed)
        self.n_augmented_ = 0

    def on_batch_begin(self, model, X, y):
        import torch

        n_aug = round(self.ratio * len(X))
        if n_aug == 0:
            return None
        idx = torch.randint(len(X), (n_aug,), generator=self.generator_)
        standardize = getattr(model, "standardize", None)
        mean = standardize.mean if standardize is not None else X.mean(dim=(0, 2))[:, None]
        std = standardize.std if standardize is not None else X.std(dim=(0, 2))[:, None]
        with torch.no_grad():
            copies, _ = self.transform_((X[idx] - mean) / std, y[idx])
            copies = copies * std + mean
        self.n_augmented_ += n_aug
        return torch.cat([X, copies.to(X.dtype)]), torch.cat([y, y[idx]])
