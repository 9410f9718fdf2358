"""`EEGDecoder`: a net that takes raw microvolts, with its input standardization as first layer."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data._checks import DataError, check_X
from ..data.containers import EEGData


class Standardize(nn.Module):
    """Per-channel standardization ``(X - mean) / std`` with stored statistics.

    The statistics are buffers, so they are saved with the weights and gradients flow through the layer: an
    attack on the :class:`EEGDecoder` works in microvolts, the units of the data.

    Parameters
    ----------
    n_chans : int
        Number of channels; ``mean`` and ``std`` have shape (n_chans, 1) and start as 0 and 1 (identity).
    """

    def __init__(self, n_chans: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_chans, 1))
        self.register_buffer("std", torch.ones(n_chans, 1))

    def fit(self, X, *, min_std: float = 1e-6) -> "Standardize":
        """Set the statistics from ``X``, ndarray of shape (n_trials, n_chans, n_times), in microvolts.

        Channel means and standard deviations are taken over trials and time; a std below ``min_std`` (a flat
        channel) is raised to ``min_std`` so the layer never divides by zero.
        """
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=(0, 2))
        std = np.maximum(X.std(axis=(0, 2)), min_std)
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype).reshape(-1, 1))
        self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype).reshape(-1, 1))
        return self

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mean) / self.std


class EEGDecoder(nn.Module):
    """Classifier for raw EEG in microvolts: :class:`Standardize` followed by a registry net.

    Build it with :func:`models.build_model` (or :func:`models.load_bundle`) rather than directly.
    ``forward`` takes float32 microvolts of shape (n_trials, n_chans, n_times) and returns logits of shape
    (n_trials, n_outputs), without softmax, so gradient attacks and ``CrossEntropyLoss`` can use it as is.

    Parameters
    ----------
    net : torch.nn.Module
        The classifier that receives standardized input.
    arch : str
        Registry name of ``net`` (see :func:`models.model_names`).
    init_kwargs : dict
        The explicit, JSON-serializable keyword arguments ``net`` was built with; the registry builder called
        with them rebuilds the same architecture.
    ch_names : tuple of str
        Channel names in input order.
    sfreq : float
        Sampling frequency in Hz.
    classes : tuple of str
        Class names; logit ``i`` belongs to ``classes[i]``.

    Attributes
    ----------
    standardize : Standardize
        The input standardization (first layer).
    history_ : list of dict
        Per-epoch training log, set by :func:`models.fit_model`.
    train_config_ : TrainConfig
        The configuration of the last :func:`models.fit_model` call.
    """

    def __init__(self, net: nn.Module, *, arch: str, init_kwargs: dict, ch_names, sfreq: float, classes):
        super().__init__()
        self.standardize = Standardize(int(init_kwargs["n_chans"]))
        self.net = net
        self.arch = arch
        self.init_kwargs = dict(init_kwargs)
        self.ch_names = tuple(ch_names)
        self.sfreq = float(sfreq)
        self.classes = tuple(classes)

    @property
    def n_chans(self) -> int:
        return int(self.init_kwargs["n_chans"])

    @property
    def n_times(self) -> int:
        return int(self.init_kwargs["n_times"])

    @property
    def n_outputs(self) -> int:
        return int(self.init_kwargs["n_outputs"])

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(X))

    def extra_repr(self) -> str:
        return (f"arch={self.arch!r}, n_chans={self.n_chans}, n_times={self.n_times}, sfreq={self.sfreq:g}, "
                f"classes={self.classes}")


def _as_array(model: EEGDecoder | nn.Module, X) -> np.ndarray:
    if isinstance(X, EEGData):
        X = X.X
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = check_X(X)
    n_chans, n_times = getattr(model, "n_chans", None), getattr(model, "n_times", None)
    if n_chans is not None and (X.shape[1], X.shape[2]) != (n_chans, n_times):
        raise DataError(f"X must have shape (n_trials, {n_chans}, {n_times}) for this model, got shape {X.shape}.")
    return X.astype(np.float32, copy=False)


def predict_logits(model: nn.Module, X, batch_size: int = 256) -> np.ndarray:
    """Logits of ``model`` for ``X``, computed in eval mode without gradients.

    Parameters
    ----------
    model : torch.nn.Module
        Usually an :class:`EEGDecoder`; its ``training`` flag is restored afterwards.
    X : ndarray or Tensor of shape (n_trials, n_chans, n_times), or EEGData
        EEG in microvolts.
    batch_size : int, default=256
        Trials per forward pass.

    Returns
    -------
    logits : ndarray of shape (n_trials, n_outputs), float32
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
    X = _as_array(model, X)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = [model(torch.from_numpy(X[i:i + batch_size]).to(device)).cpu() for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def predict(model: nn.Module, X, batch_size: int = 256) -> np.ndarray:
    """Predicted class index of each trial (argmax of :func:`predict_logits`), ndarray of shape (n_trials,)."""
    return predict_logits(model, X, batch_size=batch_size).argmax(axis=1)
