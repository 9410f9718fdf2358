"""`conform_data`: the one check that EEG data fit a model, and the relabelling of classes by name.

Every entry point (suite, study, audit, `assert_robust`) calls it before attacking, so a mismatch is one error
naming both sides, never a silent wrong number: channel count and window length; channel names (order included);
sampling rate; and classes, which are matched by *name*: epochs whose event codes are ordered differently from
the model's training data get their labels mapped to the model's class order.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from ..data import EEGData
from ..data.containers import same_channels
from ..data._checks import DataError


def _attr(model, name):
    """``model.name`` or None (braindecode nets raise ValueError for signal parameters they were not given)."""
    try:
        return getattr(model, name, None)
    except (AttributeError, ValueError):
        return None


def _default_names(names, n) -> bool:
    """True for placeholder channel names (``ch0, ch1, ...``) given when the real ones were unknown."""
    return tuple(names) == tuple(f"ch{i}" for i in range(n))


def _default_classes(classes) -> bool:
    """True for placeholder class names ("0", "1", ...) of arrays given without names."""
    return tuple(classes) == tuple(str(i) for i in range(len(classes)))


def model_ch_names(model):
    """Channel names the model was built for: ``ch_names`` (EEGDecoder) or braindecode's ``chs_info``, else None."""
    names = _attr(model, "ch_names")
    if names:
        return tuple(names)
    info = _attr(model, "chs_info")
    try:
        return tuple(ch["ch_name"] for ch in info) if info else None
    except (KeyError, TypeError):
        return None


def conform_data(model: nn.Module, data: EEGData, *, name: str = "the model") -> EEGData:
    """Return ``data`` with labels in ``model``'s class order, or raise DataError naming what does not fit.

    Parameters
    ----------
    model : torch.nn.Module
        An `EEGDecoder` (knows its channels, sampling rate and classes) or any module mapping
        (n_trials, n_chans, n_times) to logits (then only the shape and the number of outputs are checked).
    data : EEGData
        The trials to evaluate.
    name : str
        How to call the model in messages.
    """
    got = (data.n_chans, data.n_times)
    n_chans, n_times = _attr(model, "n_chans"), _attr(model, "n_times")
    if n_chans is not None and n_times is not None and (int(n_chans), int(n_times)) != got:
        raise DataError(
            f"the epochs do not fit {name}: it expects {n_chans} channels x {n_times} samples, the epochs have "
            f"{got[0]} channels x {got[1]} samples (shape {data.X.shape}); use epochs with the model's channels "
            "and window length.")
    ch_names = model_ch_names(model)
    if (ch_names and tuple(ch_names) != tuple(data.ch_names) and not _default_names(ch_names, len(ch_names))
            and not _default_names(data.ch_names, data.n_chans)):
        if same_channels(ch_names, data.ch_names):
            warnings.warn(f"the epochs list {name}'s channels in another order ({list(data.ch_names)}); they are "
                          f"reordered by name to the model's order {list(ch_names)}.", stacklevel=2)
            data = data.reorder_channels(ch_names)
        else:
            missing = [c for c in ch_names if c not in data.ch_names]
            hint = f"missing {missing}" if missing else "pick the model's channels"
            raise DataError(f"the epochs do not fit {name}: it expects channels {list(ch_names)}, the epochs have "
                            f"{list(data.ch_names)} ({hint}).")
    sfreq = _attr(model, "sfreq")
    if sfreq and data.sfreq != 1.0 and abs(float(sfreq) - data.sfreq) > 1e-6 * float(sfreq):
        raise DataError(f"the epochs do not fit {name}: it was trained at {float(sfreq):g} Hz, the epochs are "
                        f"sampled at {data.sfreq:g} Hz; resample them (epochs.resample({float(sfreq):g})).")
    classes = _attr(model, "classes")
    if classes and not _default_classes(data.classes):
        classes = tuple(str(c) for c in classes)
        if tuple(data.classes) != classes:
            present = [data.classes[i] for i in np.unique(data.y)]
            if not set(present) <= set(classes):
                raise DataError(f"the epochs do not fit {name}: its classes are {list(classes)}, the epochs have "
                                f"classes {list(data.classes)}; name the event_id conditions as the model's.")
            data = data.relabel(classes)
    n_outputs = _n_outputs(model, data, name) if n_chans is None or n_times is None else _attr(model, "n_outputs")
    if n_outputs is not None and data.y.max() >= n_outputs:
        raise DataError(f"the epochs do not fit {name}: it has {n_outputs} outputs, the epochs have labels up to "
                        f"{int(data.y.max())} (classes {list(data.classes)}).")
    return data


def _n_outputs(model, data, name):
    """Run a plain module on two trials: its number of outputs, or a DataError naming the shape it fails on."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()
            out = model(torch.from_numpy(data.X[:2]).to(device))
    except (RuntimeError, ValueError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"the epochs do not fit {name}: {type(model).__name__} fails on input of shape "
                        f"{tuple(data.X[:2].shape)} (n_chans={data.n_chans}, n_times={data.n_times}): "
                        f"{first}") from err
    finally:
        model.train(was_training)
    return out.shape[-1] if out.ndim == 2 else None


def conform_pair(train: EEGData, test: EEGData) -> EEGData:
    """Return ``test`` with labels in ``train``'s class order, or raise DataError naming what differs.

    What a model trained on ``train`` would check (`conform_data`), from the data alone: channels, window length,
    sampling rate and class names.
    """
    if tuple(train.ch_names) != tuple(test.ch_names):
        raise DataError(f"training and test epochs have different channels: {list(train.ch_names)} vs "
                        f"{list(test.ch_names)}; pick the same channels in the same order.")
    if train.n_times != test.n_times:
        raise DataError(f"training and test epochs have different window lengths: {train.n_times} vs "
                        f"{test.n_times} samples; cut both with the same tmin/tmax.")
    if abs(train.sfreq - test.sfreq) > 1e-6 * train.sfreq:
        raise DataError(f"training and test epochs have different sampling rates: {train.sfreq:g} vs "
                        f"{test.sfreq:g} Hz; resample one of them.")
    if tuple(train.classes) != tuple(test.classes):
        present = [test.classes[i] for i in np.unique(test.y)]
        if not set(present) <= set(train.classes):
            raise DataError(f"test epochs have classes {list(test.classes)}, the training epochs "
                            f"{list(train.classes)}; name the event_id conditions the same in both.")
        test = test.relabel(train.classes)
    return test
