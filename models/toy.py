"""A tiny linear net for tests and docs (as skorch ships ``skorch/toy.py``)."""

from __future__ import annotations

from torch import nn


class ToyNet(nn.Sequential):
    """Linear classifier on the flattened window: flatten -> dropout -> linear.

    It has the signal parameters of a braindecode model, so the registry, training loop, saving and attacks treat it
    like one, but it trains in well under a second on CPU. Being linear in its input, it reaches 100 % accuracy on the
    synthetic sinusoid-sign data within a few epochs and is fully vulnerable to gradient attacks, which makes
    "accuracy drops under attack" a real assertion in tests.

    Parameters
    ----------
    n_chans : int
        Number of EEG channels.
    n_outputs : int
        Number of classes (logits per trial).
    n_times : int
        Number of samples per trial.
    sfreq : float or None, default=None
        Sampling frequency in Hz; stored only, so that the signal parameters match braindecode models.
    drop_prob : float, default=0.0
        Dropout probability applied to the flattened input.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float | None = None,
                 drop_prob: float = 0.0):
        super().__init__()
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.drop_prob = drop_prob
        self.add_module("flatten", nn.Flatten())
        self.add_module("drop", nn.Dropout(p=drop_prob))
        self.add_module("final_layer", nn.Linear(n_chans * n_times, n_outputs))
        nn.init.xavier_uniform_(self.final_layer.weight)
        nn.init.zeros_(self.final_layer.bias)
