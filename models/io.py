"""Save and load a trained model as a bundle directory: ``weights.safetensors`` plus ``model.json``.

Weights are only ever read with safetensors: a pickled checkpoint (``torch.save``, ``.pt``/``.pkl``) can run code
when it is loaded, so :func:`load_bundle` recognizes one by its first bytes and refuses it without unpickling.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path

import numpy as np
import torch

from ..data._checks import ConfigError, ModelFileError, check_option

from .build import instantiate
from .registry import model_names

FORMAT_NAME = "eegrobust-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model.json"
REQUIRED_KEYS = ("format", "format_version", "arch", "init_kwargs", "ch_names", "sfreq", "n_times", "classes")
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
_SAFE_HOWTO = ("load it once in a trusted session with torch.load(path, weights_only=True) into a model from "
               "models.build_model, then write a safe bundle with models.save_bundle(model, out_dir)")


def package_versions() -> dict:
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return dict(eegrobust=version("eegrobust"), torch=torch.__version__, braindecode=version("braindecode"),
                mne=version("mne"), numpy=np.__version__, python=platform.python_version())


def _jsonable(value, what: str):
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} is not JSON-serializable ({err}); build the model with plain int/float/str/bool "
                          "overrides so it can be saved and rebuilt.") from err
    return value


def save_bundle(model, path) -> Path:
    """Write ``model`` to the directory ``path`` (created if needed) and return it.

    Parameters
    ----------
    model : EEGDecoder
        From :func:`models.build_model`, usually trained by :func:`models.fit_model`.
    path : str or Path
        Bundle directory; ``weights.safetensors`` and ``model.json`` in it are overwritten.

    Notes
    -----
    ``weights.safetensors`` holds the full state dict, standardization buffers included. ``model.json`` holds the
    format name (``"eegrobust-model"``) and version, the architecture and its explicit constructor kwargs, channel
    names, sampling rate, window length, class names, the standardization statistics, the training config,
    regularization, history and training-data hash (when trained), and the package versions.
    """
    from safetensors.torch import save_file

    for attr in ("arch", "init_kwargs", "ch_names", "sfreq", "classes", "standardize"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be an EEGDecoder (from models.build_model), got {type(model).__name__} "
                            f"without {attr!r}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = getattr(model, "train_config_", None)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "init_kwargs": _jsonable(dict(model.init_kwargs), "init_kwargs"),
        "ch_names": list(model.ch_names),
        "sfreq": model.sfreq,
        "n_times": model.n_times,
        "classes": list(model.classes),
        "standardization": {"mean": model.standardize.mean.flatten().tolist(),
                            "std": model.standardize.std.flatten().tolist()},
        "training": None if config is None else {
            "config": config.to_dict(),
            "regularization": getattr(model, "regularization_", None),
            "data_hash": getattr(model, "train_data_hash_", None),
            "best_epoch": getattr(model, "best_epoch_", None),
            "history": getattr(model, "history_", None),
        },
        "versions": package_versions(),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
    (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return path


def _sniff(file: Path) -> str:
    """Name what ``file`` holds from its first bytes: "safetensors", "zip", "pickle" or "unknown"."""
    with open(file, "rb") as f:
        head = f.read(9)
    size = file.stat().st_size
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) == 9 and 0 < int.from_bytes(head[:8], "little") <= size - 8 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _check_weights_file(file: Path) -> None:
    kind = _sniff(file)
    if kind == "safetensors":
        return
    if kind in ("zip", "pickle"):
        what = "a PyTorch checkpoint written by torch.save (zip archive with a pickle)" if kind == "zip" else "a pickle"
        raise ModelFileError(f"{file} is {what}, not safetensors; eegrobust never unpickles model files because "
                             f"unpickling can run arbitrary code. To convert a checkpoint you trust, {_SAFE_HOWTO}.")
    raise ModelFileError(f"{file} is not a safetensors file (unrecognized header); write bundles with "
                         "models.save_bundle.")


def _read_meta(path: Path) -> dict:
    file = path / CONFIG_FILE
    if not file.is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES) if path.is_dir() else []
        hint = (f" It holds {pickles}: pickled checkpoints are not loaded; {_SAFE_HOWTO}." if pickles
                else " Is it a bundle written by models.save_bundle?")
        raise ModelFileError(f"no {CONFIG_FILE} in {path}.{hint}")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{file} is not valid JSON ({err}); re-save the model with models.save_bundle.") from err
    if not isinstance(meta, dict):
        raise ModelFileError(f"{file} must hold a JSON object, got {type(meta).__name__}; re-save with models.save_bundle.")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFileError(f"{file} lacks keys {missing}; re-save the model with models.save_bundle.")
    if meta["format"] != FORMAT_NAME:
        raise ModelFileError(f"{file} has format {meta['format']!r}, expected {FORMAT_NAME!r}; it was not written by "
                             "models.save_bundle.")
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"{file} has format_version {meta['format_version']!r}, this eegrobust reads "
                             f"{FORMAT_VERSION}; use the eegrobust version listed under 'versions' in the file.")
    check_option(f"arch in {file}", meta["arch"], model_names(), error=ModelFileError)
    if not isinstance(meta["init_kwargs"], dict):
        raise ModelFileError(f"init_kwargs in {file} must be an object, got {meta['init_kwargs']!r}.")
    return meta


def _check_channels(saved, expected, path: Path) -> None:
    saved, expected = list(saved), list(expected)
    if saved == expected:
        return
    missing = [c for c in saved if c not in expected]
    extra = [c for c in expected if c not in saved]
    if missing or extra:
        raise ModelFileError(f"channels of the model in {path} differ from ch_names: the model needs {missing} which "
                             f"ch_names lacks, and ch_names has {extra} which the model lacks; pick/rename channels "
                             f"to the model's {saved}.")
    raise ModelFileError(f"ch_names has the model's channels in a different order ({expected} vs {saved}); reorder "
                         "the data to the model's order (mne Epochs.reorder_channels).")


def _load_state(model, file: Path) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"could not read {file} ({err}); re-save the model with models.save_bundle.") from err
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        first = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}"
        raise ModelFileError(f"{file} does not fit arch {model.arch!r} with the kwargs in {CONFIG_FILE}: {first} "
                             f"({len(missing)} missing, {len(unexpected)} unexpected).")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ModelFileError(f"{file}: tensor {key!r} has shape {tuple(state[key].shape)} but the model built "
                                 f"from {CONFIG_FILE} expects {tuple(value.shape)}.")
    model.load_state_dict(state, strict=True)


def load_bundle(path, *, ch_names=None):
    """Load an :class:`~models.decoder.EEGDecoder` saved by :func:`save_bundle`.

    Parameters
    ----------
    path : str or Path
        The bundle directory (a path to its ``model.json`` works too).
    ch_names : sequence of str, optional
        Channels of the data the model will see; raise if they differ from the model's (set or order).

    Returns
    -------
    model : EEGDecoder
        In eval mode, with ``train_config_``, ``regularization_``, ``history_`` and ``train_data_hash_`` restored
        when the bundle was trained.

    Raises
    ------
    ModelFileError
        For a missing or malformed ``model.json``, missing keys, a wrong format name or version, an unknown
        architecture, channels differing from ``ch_names``, a weights file that is not safetensors (a pickle is
        detected by its first bytes and never loaded), or tensors that do not fit the architecture.
    """
    path = Path(path)
    if path.is_file():
        if path.name != CONFIG_FILE:
            _check_weights_file(path)
            raise ModelFileError(f"{path} is a weights file; pass its bundle directory (with {CONFIG_FILE}).")
        path = path.parent
    if not path.exists():
        raise ModelFileError(f"model bundle {path} does not exist; write one with models.save_bundle.")
    meta = _read_meta(path)
    if ch_names is not None:
        _check_channels(meta["ch_names"], ch_names, path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"no {WEIGHTS_FILE} in {path}; re-save the model with models.save_bundle.")
    _check_weights_file(weights)
    try:
        model = instantiate(meta["arch"], meta["init_kwargs"], ch_names=meta["ch_names"], sfreq=meta["sfreq"],
                            classes=meta["classes"], random_state=None)
    except (ConfigError, TypeError) as err:
        raise ModelFileError(f"cannot rebuild arch {meta['arch']!r} from init_kwargs in {path / CONFIG_FILE}: {err}") from err
    _load_state(model, weights)
    _restore_training(model, meta.get("training"))
    return model.eval()


def _restore_training(model, training) -> None:
    if not training:
        return
    from .train import TrainConfig

    if training.get("config") is not None:
        model.train_config_ = TrainConfig.from_dict(training["config"])
    model.regularization_ = training.get("regularization")
    model.train_data_hash_ = training.get("data_hash")
    model.best_epoch_ = training.get("best_epoch")
    model.history_ = training.get("history")
