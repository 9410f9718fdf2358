"""Build a registry net sized to the data, wrapped in an :class:`~models.decoder.EEGDecoder`."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping

import numpy as np
import torch

from ..data._checks import ConfigError, check_option
from ..data.containers import EEGData

from ._seed import seeded
from .decoder import EEGDecoder
from .layers import fast_layers
from .registry import get_spec

_SIGNAL_KEYS = ("n_chans", "n_outputs", "n_times", "sfreq")
_MAX_N_TIMES = 1_000_000


def min_n_times(name: str, sfreq: float, **overrides) -> int:
    """Shortest window (in samples) that architecture ``name`` accepts at ``sfreq``.

    Uses the smallest kernel and pooling lengths that :func:`build_model` may shrink to, unless ``overrides`` fix
    them.
    """
    spec = get_spec(name)
    kw = {**spec.temporal(float(sfreq), 0.0), **overrides}
    return _min_len(spec, kw)


def _min_len(spec, kw: dict) -> int:
    lo, hi = 1, 1
    while spec.out_len(kw, hi) < 1:
        lo, hi = hi + 1, hi * 2
        if hi > _MAX_N_TIMES:
            raise ConfigError(f"no window up to {_MAX_N_TIMES} samples fits the kernel/pooling lengths {kw}.")
    while lo < hi:  # out_len is non-decreasing in n_times
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if spec.out_len(kw, mid) >= 1 else (mid + 1, hi)
    return lo


def default_kwargs(name: str, *, n_chans: int, n_times: int, sfreq: float, n_outputs: int, **overrides) -> dict:
    """Explicit constructor kwargs of architecture ``name`` for a window shape.

    Temporal kernel and pooling lengths are scaled from the sampling rate each paper used to ``sfreq``. If the
    window is then too short, pooling (and for Deep4Net also the kernels) shrink step by step to their floors.
    ``overrides`` replace any value; the result is checked to produce an output of at least one sample.

    Raises
    ------
    ConfigError
        If the window is too short even at the smallest lengths; the message names the minimum ``n_times``.
    """
    spec = get_spec(name)
    base = dict(n_chans=int(n_chans), n_outputs=int(n_outputs), n_times=int(n_times), sfreq=float(sfreq))
    shrink, temporal = 1.0, spec.temporal(base["sfreq"], 1.0)
    floors = spec.temporal(base["sfreq"], 0.0)
    while spec.out_len({**temporal, **overrides}, base["n_times"]) < 1 and temporal != floors:
        shrink *= 0.9
        temporal = spec.temporal(base["sfreq"], shrink)
    kwargs = {**base, **spec.fixed, **temporal, **overrides}
    if spec.out_len(kwargs, base["n_times"]) < 1:
        need = _min_len(spec, {**floors, **overrides})
        raise ConfigError(
            f"n_times={base['n_times']} is too short for model {name!r} at sfreq={base['sfreq']:g} Hz: it needs "
            f"n_times >= {need} ({need / base['sfreq']:.3g} s). Use longer epochs"
            + (" or a model with shorter kernels (e.g. 'eegnet')." if name != "eegnet" else ".")
        )
    return kwargs


def _shape_from(data, n_chans, n_times, sfreq, n_outputs, ch_names, classes) -> dict:
    given = [k for k, v in dict(n_chans=n_chans, n_times=n_times, sfreq=sfreq, n_outputs=n_outputs,
                                ch_names=ch_names, classes=classes).items() if v is not None]
    if data is not None and given:
        raise TypeError(f"pass either data or the shape keywords, not both; got data and {given}.")
    if isinstance(data, EEGData):
        return dict(n_chans=data.n_chans, n_times=data.n_times, sfreq=data.sfreq, n_outputs=data.n_classes,
                    ch_names=data.ch_names, classes=data.classes)
    if isinstance(data, Mapping):
        return _shape_from(None, **{k: data.get(k) for k in (*_SIGNAL_KEYS, "ch_names", "classes")})
    if data is not None:
        raise TypeError(f"data must be an EEGData, a mapping of shape keywords or None, got {type(data).__name__}.")
    shape = dict(n_chans=n_chans, n_times=n_times, sfreq=sfreq, n_outputs=n_outputs)
    bad = [f"{k}={v!r}" for k, v in shape.items() if v is None or not (isinstance(v, (int, float, np.number)) and v > 0)]
    if bad:
        raise ConfigError(f"build_model needs an EEGData or positive n_chans, n_times, sfreq, n_outputs; got {', '.join(bad)}.")
    ch_names = tuple(ch_names) if ch_names is not None else tuple(f"ch{i}" for i in range(int(n_chans)))
    classes = tuple(classes) if classes is not None else tuple(str(i) for i in range(int(n_outputs)))
    if len(ch_names) != n_chans or len(classes) != n_outputs:
        raise ConfigError(f"got {len(ch_names)} ch_names for n_chans={n_chans} and {len(classes)} classes for "
                          f"n_outputs={n_outputs}; they must match.")
    return dict(shape, ch_names=ch_names, classes=classes)


def _check_overrides(name: str, overrides: dict) -> None:
    allowed = _constructor_params(name)
    for key in overrides:
        if key in _SIGNAL_KEYS:
            raise ConfigError(f"{key} comes from the data; pass it as the {key}= keyword or through the EEGData, "
                              "not as an override.")
        check_option(f"keyword argument for model {name!r}", key, allowed)


def _constructor_params(name: str) -> list[str]:
    cls = get_spec(name).net_class()
    skip = {"self", "args", "kwargs", "chs_info", "input_window_seconds", *_SIGNAL_KEYS}
    return [p for p in inspect.signature(cls.__init__).parameters if p not in skip]


def instantiate(name: str, init_kwargs: dict, *, ch_names, sfreq: float, classes, random_state=0) -> EEGDecoder:
    """Build the :class:`EEGDecoder` for explicit constructor kwargs (no scaling), with seeded initial weights.

    The global torch RNG is left untouched: initialization runs under ``torch.random.fork_rng``.
    """
    spec = get_spec(name)
    seed = _seed_from(random_state)
    with seeded(seed) if seed is not None else torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            net = spec.build(**init_kwargs)
        except (RuntimeError, ValueError) as err:
            raise ConfigError(f"could not build model {name!r} with {init_kwargs}: {err}") from err
    return EEGDecoder(fast_layers(net), arch=name, init_kwargs=init_kwargs, ch_names=ch_names, sfreq=sfreq,
                      classes=classes)


def _seed_from(random_state) -> int | None:
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    raise TypeError(f"random_state must be an int, a numpy Generator or None, got {type(random_state).__name__}.")


def build_model(name: str, data=None, /, *, n_chans: int | None = None, n_times: int | None = None,
                sfreq: float | None = None, n_outputs: int | None = None, ch_names=None, classes=None,
                random_state=0, **overrides) -> EEGDecoder:
    """Build registry model ``name`` sized to the data, behind an input standardization layer.

    Parameters
    ----------
    name : str
        Registry name, one of :func:`models.model_names`: ``"eegnet"`` [1]_, ``"deep4"`` and ``"shallow"`` [2]_,
        or ``"toy"``.
    data : EEGData or mapping, optional
        Where the signal parameters come from: ``n_chans``, ``n_times``, ``sfreq`` and ``n_outputs`` (the number of
        classes), plus ``ch_names`` and ``classes``. Without it, pass them as keywords.
    n_chans, n_times, sfreq, n_outputs : int, int, float, int, optional
        Signal parameters when ``data`` is not given.
    ch_names, classes : sequence of str, optional
        Names stored on the model; default ``ch0, ch1, ...`` and ``0, 1, ...``.
    random_state : int, numpy Generator or None, default=0
        Seed of the initial weights (the global torch RNG is not changed).
    **overrides
        Constructor arguments of the braindecode class (or :class:`~models.toy.ToyNet`) that replace the scaled
        defaults, e.g. ``F1=16`` or ``drop_prob=0.5``. Only JSON-serializable values can be saved by
        :func:`models.save_bundle`.

    Returns
    -------
    model : EEGDecoder
        In training mode, with identity standardization until :func:`models.fit_model` sets it.

    Raises
    ------
    ConfigError
        For an unknown name or keyword (with a "did you mean"), or a window too short for the architecture (the
        message names the minimum ``n_times``).

    Notes
    -----
    Temporal kernels and pooling are scaled from 128 Hz (EEGNet) or 250 Hz (Deep4Net, ShallowFBCSPNet) to
    ``sfreq``; see :func:`default_kwargs`. The resolved kwargs are stored in ``model.init_kwargs``.

    References
    ----------
    .. [1] Lawhern, V. J., Solon, A. J., Waytowich, N. R., Gordon, S. M., Hung, C. P., & Lance, B. J. (2018).
       EEGNet: a compact convolutional neural network for EEG-based brain-computer interfaces. Journal of Neural
       Engineering, 15(5), 056013.
    .. [2] Schirrmeister, R. T., Springenberg, J. T., Fiederer, L. D. J., Glasstetter, M., Eggensperger, K.,
       Tangermann, M., Hutter, F., Burgard, W., & Ball, T. (2017). Deep learning with convolutional neural
       networks for EEG decoding and visualization. Human Brain Mapping, 38(11), 5391-5420.
    """
    get_spec(name)
    shape = _shape_from(data, n_chans, n_times, sfreq, n_outputs, ch_names, classes)
    _check_overrides(name, overrides)
    kwargs = default_kwargs(name, n_chans=shape["n_chans"], n_times=shape["n_times"], sfreq=shape["sfreq"],
                            n_outputs=shape["n_outputs"], **overrides)
    return instantiate(name, kwargs, ch_names=shape["ch_names"], sfreq=shape["sfreq"], classes=shape["classes"],
                       random_state=random_state)
