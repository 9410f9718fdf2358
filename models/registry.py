"""Registry of decoder architectures: name -> how to build it and how to size it to a window.

braindecode's defaults are sized for one sampling rate (EEGNet for 128 Hz, Deep4Net and ShallowFBCSPNet for
250 Hz) and for windows of a few seconds. Each entry therefore says how its temporal kernel and pooling lengths
scale with ``sfreq`` (``temporal``) and how long its output is for a given window (``out_len``), so that
:func:`models.build.build_model` can size every net to the data, shrink pooling for short windows, and name the
shortest window that still works.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from ..data._checks import check_option


@dataclass(frozen=True)
class ModelSpec:
    """How to build one architecture.

    Parameters
    ----------
    net_class : callable
        ``net_class()`` returns the torch module class (imported lazily, as braindecode takes seconds to import);
        ``spec.build(**kwargs)`` calls it with the explicit, JSON-serializable constructor arguments.
    temporal : callable
        ``temporal(sfreq, shrink) -> dict`` of temporal kernel / pooling lengths in samples for a sampling rate,
        shrunk by ``shrink`` in (0, 1] to fit short windows; ``shrink=0`` gives the smallest allowed lengths.
    out_len : callable
        ``out_len(kwargs, n_times) -> int``, the length of the net's last temporal feature map; below 1 means
        the window is too short for those kwargs.
    fixed : dict, default={}
        Constructor arguments that do not depend on the data.
    reference : str, default=""
        The paper the architecture comes from.
    """

    net_class: Callable[[], type]
    temporal: Callable[[float, float], dict]
    out_len: Callable[[dict, int], int]
    fixed: dict = field(default_factory=dict)
    reference: str = ""

    def build(self, **kwargs) -> Any:
        """Instantiate the net with explicit constructor ``kwargs``."""
        return self.net_class()(**kwargs)


@contextlib.contextmanager
def _quiet_import():
    # Importing braindecode.models imports every model, and some emit deprecation noise (MNE montages, pandas) at
    # import time that says nothing about the user's code; silence it for the import only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _scale(length: float, factor: float, floor: int) -> int:
    return max(floor, int(round(length * factor)))


def _conv(n: int, k: int, pad: int = 0) -> int:
    return n + 2 * pad - k + 1


def _pool(n: int, k: int, stride: int) -> int:
    return (n - k) // stride + 1 if n >= k else 0


# ---------------------------------------------------------------------------------------------------- EEGNet
def _eegnet_class():
    with _quiet_import():
        from braindecode.models import EEGNet
    return EEGNet


def _eegnet_temporal(sfreq: float, shrink: float) -> dict:
    # Lawhern et al. use 128 Hz: a 64-sample (0.5 s) temporal kernel, pooling by 4 then 8. Lengths shrink for lower
    # rates but never grow: at 256 Hz (SCP1) braindecode's defaults gave 0.92 test accuracy, the doubled kernels 0.86.
    s = min(1.0, sfreq / 128.0)
    return dict(kernel_length=_scale(64, s, 4), depthwise_kernel_length=_scale(16, s, 2),
                pool1_kernel_size=_scale(4, s * shrink, 2), pool2_kernel_size=_scale(8, s * shrink, 2))


def _eegnet_out_len(kw: dict, n_times: int) -> int:
    n = _conv(n_times, kw["kernel_length"], kw["kernel_length"] // 2)
    n = _pool(n, kw["pool1_kernel_size"], kw["pool1_kernel_size"])
    n = _conv(n, kw["depthwise_kernel_length"], kw["depthwise_kernel_length"] // 2)
    return _pool(n, kw["pool2_kernel_size"], kw["pool2_kernel_size"])


# -------------------------------------------------------------------------------------------------- Deep4Net
def _deep4_class():
    with _quiet_import():
        from braindecode.models import Deep4Net
    return Deep4Net


def _deep4_temporal(sfreq: float, shrink: float) -> dict:
    # Schirrmeister et al. use 250 Hz: 10-sample kernels and max-pooling 3 / stride 3 in all four blocks.
    s = sfreq / 250.0 * shrink
    k, p = _scale(10, s, 3), _scale(3, s, 2)
    return dict(filter_time_length=k, filter_length_2=k, filter_length_3=k, filter_length_4=k,
                pool_time_length=p, pool_time_stride=p)


def _deep4_out_len(kw: dict, n_times: int) -> int:
    n = n_times
    for key in ("filter_time_length", "filter_length_2", "filter_length_3", "filter_length_4"):
        n = _pool(_conv(n, kw[key]), kw["pool_time_length"], kw["pool_time_stride"])
    return n


# ------------------------------------------------------------------------------------------- ShallowFBCSPNet
def _shallow_class():
    with _quiet_import():
        from braindecode.models import ShallowFBCSPNet
    return ShallowFBCSPNet


def _shallow_temporal(sfreq: float, shrink: float) -> dict:
    # Schirrmeister et al. use 250 Hz: a 25-sample temporal kernel, mean-pooling 75 / stride 15.
    s = sfreq / 250.0
    return dict(filter_time_length=_scale(25, s * shrink, 3), pool_time_length=_scale(75, s * shrink, 2),
                pool_time_stride=_scale(15, s * shrink, 1))


def _shallow_out_len(kw: dict, n_times: int) -> int:
    return _pool(_conv(n_times, kw["filter_time_length"]), kw["pool_time_length"], kw["pool_time_stride"])


# ------------------------------------------------------------------------------------------------------- toy
def _toy_class():
    from .toy import ToyNet

    return ToyNet


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "eegnet": ModelSpec(
        _eegnet_class, _eegnet_temporal, _eegnet_out_len,
        # The flattened max-norm (0.25) dense classifier of the paper; also avoids braindecode's deprecation path.
        fixed=dict(final_layer_with_constraint=True),
        reference="Lawhern et al. (2018), J. Neural Eng. 15(5):056013",
    ),
    "deep4": ModelSpec(
        _deep4_class, _deep4_temporal, _deep4_out_len,
        reference="Schirrmeister et al. (2017), Hum. Brain Mapp. 38(11):5391-5420",
    ),
    "shallow": ModelSpec(
        _shallow_class, _shallow_temporal, _shallow_out_len,
        reference="Schirrmeister et al. (2017), Hum. Brain Mapp. 38(11):5391-5420",
    ),
    "toy": ModelSpec(_toy_class, lambda sfreq, shrink: {}, lambda kw, n_times: n_times,
                     reference="eegrobust test model (linear)"),
}


def model_names() -> list[str]:
    """Names accepted by :func:`models.build_model`, sorted."""
    return sorted(MODEL_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` registered under ``name``; raise ConfigError with a "did you mean" otherwise."""
    check_option("model", name, model_names())
    return MODEL_REGISTRY[name]
