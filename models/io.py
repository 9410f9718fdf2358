"""Save and load a trained model as a bundle directory: ``weights.safetensors`` plus ``model.json``.

Weights are only ever read with safetensors: a pickled checkpoint (``torch.save``, ``.pt``/``.pkl``) can run code
when it is loaded, so :func:`load_bundle` recognizes one by its first bytes and refuses it without unpickling.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..data._checks import ConfigError, ModelFileError, check_option
from .build import instantiate
from .registry import model_names

logger = logging.getLogger(__name__)

FORMAT_NAME = "eegrobust-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "model.json"
REQUIRED_KEYS = ("format", "format_version", "arch", "init_kwargs", "ch_names", "sfreq", "n_times", "classes")
HUGE_WEIGHT = 1e12  # no trained EEG decoder has a weight this large; random bytes read as float32 often do
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")
_SAFE_HOWTO = ("load it once in a trusted session with torch.load(path, weights_only=True) into a model from "
               "models.build_model, then write a safe bundle with models.save_bundle(model, out_dir)")


def package_versions() -> dict:
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    from .. import __version__  # the code that ran (an editable install's metadata can be stale)

    return {"eegrobust": __version__, "torch": torch.__version__, "braindecode": version("braindecode"),
            "mne": version("mne"), "numpy": np.__version__, "python": platform.python_version()}


def _jsonable(value, what: str):
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} is not JSON-serializable ({err}); build the model with plain int/float/str/bool "
                          "overrides so it can be saved and rebuilt.") from err
    return value


class BundleWriteError(ModelFileError, OSError):
    """A bundle that cannot be written where asked (a file in the way, no permission, disk full)."""


def save_bundle(model, path) -> Path:
    """Write ``model`` to the directory ``path`` (created if needed) and return it.

    Parameters
    ----------
    model : EEGDecoder
        From :func:`models.build_model`, usually trained by :func:`models.fit_model`.
    path : str or Path
        Bundle directory; ``weights.safetensors`` and ``model.json`` in it are replaced, other files are left alone.

    Raises
    ------
    BundleWriteError
        (a ModelFileError and an OSError) when ``path`` is a file or cannot be written; nothing is left behind.

    Notes
    -----
    ``weights.safetensors`` holds the full state dict, standardization buffers included. ``model.json`` holds the
    format name (``"eegrobust-model"``) and version, the SHA-256 of the weights file, the architecture and its
    explicit constructor kwargs, channel names, sampling rate, window length, class names, the standardization
    statistics, the training config, regularization, history and training-data hash (when trained), and the
    package versions.

    The write is atomic: a new bundle is built in a temporary sibling folder and renamed into place; an existing
    one gets both files written under temporary names and moved over the old ones with ``os.replace``, weights
    first and ``model.json`` last, so a reader sees the old bundle or the new one (after a kill between the two
    moves, the checksum in the old ``model.json`` makes :func:`load_bundle` refuse the new weights). Files get mode
    0666 and folders 0777 less the umask (0644 / 0755 usually), so other users can audit the bundle.
    """
    from safetensors.torch import save

    for attr in ("arch", "init_kwargs", "ch_names", "sfreq", "classes", "standardize"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be an EEGDecoder (from models.build_model), got {type(model).__name__} "
                            f"without {attr!r}.")
    path = Path(path)
    config = getattr(model, "train_config_", None)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    weights = save(tensors, metadata={"format": FORMAT_NAME})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
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
            "callbacks": getattr(model, "callbacks_", None),
            "arm": getattr(model, "arm_", None),
        },
        "versions": package_versions(),
    }
    for key, value in meta.items():
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:
            raise ConfigError(f"cannot save the bundle {str(path)!r}: {key} holds NaN or Inf, which JSON cannot "
                              "store; the model diverged, retrain it (lower lr) before saving.") from None
    text = json.dumps(meta, indent=2) + "\n"
    _write_atomically(path, {WEIGHTS_FILE: weights, CONFIG_FILE: text.encode()})
    return path


def _umask() -> int:
    try:  # Linux: read it without the os.umask set-and-restore race
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_file(file: Path, data: bytes, mode: int) -> None:
    with open(file, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(file, mode)


def _write_atomically(path: Path, files: dict) -> None:
    """Put ``files`` (name -> bytes) into the folder ``path`` so that a kill leaves the old or the new set."""
    if path.exists() and not path.is_dir():
        raise BundleWriteError(f"cannot save a bundle to {str(path)!r}: it is a file, not a folder; pass a folder "
                               "path (a bundle is a folder of model.json and weights.safetensors).")
    mask = _umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            tmp = {}
            for name, data in files.items():
                tmp[name] = path / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
                _write_file(tmp[name], data, file_mode)
            for name in files:  # weights first, model.json (the commit) last
                os.replace(tmp[name], path / name)
        else:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.chmod(tmp, dir_mode)
            for name, data in files.items():
                _write_file(tmp / name, data, file_mode)
            os.rename(tmp, path)
    except OSError as err:
        raise BundleWriteError(f"cannot save a bundle to {str(path)!r}: {err.strerror or err}"
                               f"{'' if not err.filename else f' ({err.filename})'}; choose a folder you can "
                               "write to.") from err
    finally:
        if isinstance(tmp, dict):
            for file in tmp.values():
                if file.exists():
                    file.unlink()
        elif tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_finite_weights(tensors, source) -> None:
    """Raise ModelFileError if floating tensors hold NaN/Inf, or magnitudes only garbage bytes give.

    Parameters
    ----------
    tensors : mapping of str to Tensor, or iterable of (name, Tensor)
    source : str or Path
        The file named in the message.
    """
    items = tensors.items() if hasattr(tensors, "items") else tensors
    n_bad = n_huge = 0
    first_bad = first_huge = None
    for name, tensor in items:
        if not isinstance(tensor, torch.Tensor) or tensor.is_meta or not (tensor.is_floating_point()
                                                                          or tensor.is_complex()):
            continue
        values = tensor.detach()
        finite = torch.isfinite(values)
        bad = int(finite.numel() - finite.sum())
        huge = int((values.abs() > HUGE_WEIGHT).logical_and(finite).sum())
        if bad and first_bad is None:
            first_bad = name
        if huge and first_huge is None:
            first_huge = name
        n_bad, n_huge = n_bad + bad, n_huge + huge
    if n_bad:
        raise ModelFileError(f"weights of {source} contain {n_bad} NaN/Inf values (first in tensor {first_bad!r}): "
                             "the model diverged in training or the file is damaged; retrain or re-export it.")
    if n_huge:
        raise ModelFileError(f"weights of {source} contain {n_huge} values beyond +-{HUGE_WEIGHT:g} (first in "
                             f"tensor {first_huge!r}), which no trained decoder has: the file holds garbage "
                             "(damaged, or saved with the wrong dtype); re-export it.")


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
    try:
        kind = _sniff(file)
    except OSError as err:
        raise ModelFileError(f"cannot read {file}: {err.strerror or err}; check its permissions.") from err
    if kind == "safetensors":
        return
    if kind in ("zip", "pickle"):
        what = "a PyTorch checkpoint written by torch.save (zip archive with a pickle)" if kind == "zip" else "a pickle"
        raise ModelFileError(f"{file} is {what}, not safetensors; eegrobust never unpickles model files because "
                             f"unpickling can run arbitrary code. To convert a checkpoint you trust, {_SAFE_HOWTO}.")
    raise ModelFileError(f"{file} is not a safetensors file (unrecognized header); write bundles with "
                         "models.save_bundle.")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_list_of(value, types) -> bool:
    return isinstance(value, list) and all(isinstance(v, types) and not isinstance(v, bool) for v in value)


def _training_problems(training) -> list:
    if training is None:
        return []
    if not isinstance(training, dict):
        return [f"training must be an object or null, got {_short(training)}"]
    want = {"config": (dict, "an object"), "regularization": (dict, "an object"), "data_hash": (str, "a string"),
            "best_epoch": (int, "an integer"), "history": (list, "a list")}
    return [f"training.{key} must be {what} or null, got {_short(training[key])}"
            for key, (kind, what) in want.items()
            if training.get(key) is not None and (not isinstance(training[key], kind)
                                                  or isinstance(training[key], bool))]


def _field_problems(meta: dict) -> list:
    """Every type or consistency problem of the fields of a model.json (collected, reported at once)."""
    problems = []
    kwargs = meta["init_kwargs"]
    if not isinstance(kwargs, dict):
        problems.append(f"init_kwargs must be an object, got {_short(kwargs)}")
        kwargs = {}
    for key in ("n_chans", "n_outputs"):
        if not (_is_int(kwargs.get(key)) and kwargs[key] > 0):
            problems.append(f"init_kwargs.{key} must be a positive integer, got {_short(kwargs.get(key))}")
    names, classes = meta["ch_names"], meta["classes"]
    if not (_is_list_of(names, str) and names and len(set(names)) == len(names)):
        problems.append(f"ch_names must be a non-empty list of distinct strings, got {_short(names)}")
    elif _is_int(kwargs.get("n_chans")) and len(names) != kwargs["n_chans"]:
        problems.append(f"ch_names has {len(names)} channels but init_kwargs.n_chans is {kwargs['n_chans']}")
    if not (_is_list_of(classes, (str, int)) and len(classes) >= 2 and len(set(classes)) == len(classes)):
        problems.append(f"classes must be a list of at least 2 distinct names, got {_short(classes)}")
    elif _is_int(kwargs.get("n_outputs")) and len(classes) != kwargs["n_outputs"]:
        problems.append(f"classes has {len(classes)} names but init_kwargs.n_outputs is {kwargs['n_outputs']}")
    if not (_is_number(meta["sfreq"]) and meta["sfreq"] > 0):
        problems.append(f"sfreq must be a positive number (Hz), got {_short(meta['sfreq'])}")
    elif "sfreq" in kwargs and kwargs["sfreq"] != meta["sfreq"]:
        problems.append(f"sfreq is {meta['sfreq']!r} but init_kwargs.sfreq is {_short(kwargs['sfreq'])}")
    if not (_is_int(meta["n_times"]) and meta["n_times"] > 0):
        problems.append(f"n_times must be a positive integer, got {_short(meta['n_times'])}")
    elif "n_times" in kwargs and kwargs["n_times"] != meta["n_times"]:
        problems.append(f"n_times is {meta['n_times']!r} but init_kwargs.n_times is {_short(kwargs['n_times'])}")
    digest = meta.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                   and all(c in "0123456789abcdef" for c in digest)):
        problems.append(f"weights_sha256 must be 64 hex digits, got {_short(digest)}")
    return problems + _training_problems(meta.get("training"))


def _read_meta(path: Path) -> dict:
    file = path / CONFIG_FILE
    if not file.is_file():
        try:
            names = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        except OSError:
            names = []
        pickles = [n for n in names if Path(n).suffix in _PICKLE_SUFFIXES]
        hint = (f" It holds {pickles}: pickled checkpoints are not loaded; {_SAFE_HOWTO}." if pickles
                else " Is it a bundle written by models.save_bundle?")
        raise ModelFileError(f"no {CONFIG_FILE} in {path}.{hint}")
    try:
        meta = json.loads(file.read_bytes())
    except OSError as err:
        raise ModelFileError(f"cannot read {file}: {err.strerror or err}; check its permissions.") from err
    except RecursionError:
        raise ModelFileError(f"{file} is nested too deeply to be a model.json; re-save the model with "
                             "models.save_bundle.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{file} is not valid JSON ({err}); re-save the model with models.save_bundle.") from err
    if not isinstance(meta, dict):
        raise ModelFileError(f"{file} must hold a JSON object, got {type(meta).__name__}; re-save with "
                             "models.save_bundle.")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFileError(f"{file} lacks keys {missing}; re-save the model with models.save_bundle.")
    if meta["format"] != FORMAT_NAME:
        raise ModelFileError(f"{file} has format {_short(meta['format'])}, expected {FORMAT_NAME!r}; it was not "
                             "written by models.save_bundle.")
    if not _is_int(meta["format_version"]) or meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"{file} has format_version {_short(meta['format_version'])}, this eegrobust reads "
                             f"{FORMAT_VERSION}; use the eegrobust version listed under 'versions' in the file.")
    if not isinstance(meta["arch"], str):
        raise ModelFileError(f"arch in {file} must be a string, one of {sorted(model_names())}, got "
                             f"{_short(meta['arch'])}.")
    check_option(f"arch in {file}", meta["arch"], model_names(), error=ModelFileError)
    problems = _field_problems(meta)
    if problems:
        raise ModelFileError(f"{file} has invalid fields: {'; '.join(problems)}; re-save the model with "
                             "models.save_bundle.")
    return meta


def check_channels(saved, expected, path: Path) -> None:
    """Raise ModelFileError unless ``expected`` (the data's channels) are the model's ``saved`` channels, in order."""
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


def _load_state(model, file: Path, digest: str | None) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        raw = file.read_bytes()
    except OSError as err:
        raise ModelFileError(f"cannot read {file}: {err.strerror or err}; check its permissions.") from err
    if digest is None:  # eegrobust 0.2 and earlier wrote format_version 1 bundles without the checksum
        logger.warning("%s has no weights_sha256, so the integrity of %s is not checked (a bundle from eegrobust "
                       "0.2 or earlier, or edited by hand); re-save it with models.save_bundle to add the checksum.",
                       file.parent / CONFIG_FILE, file.name)
    elif hashlib.sha256(raw).hexdigest() != digest:
        raise ModelFileError(f"{file} does not match the weights_sha256 in {CONFIG_FILE}: the weights were changed "
                             "after saving, or a save was interrupted; save the bundle again.")
    try:
        state = load(raw)
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"could not read {file} ({_first_line(err)}); re-save the model with "
                             "models.save_bundle.") from err
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
        if state[key].is_floating_point() != value.is_floating_point():
            raise ModelFileError(f"{file}: tensor {key!r} has dtype {state[key].dtype} but the model expects "
                                 f"{value.dtype}; re-save the model with models.save_bundle.")
    check_finite_weights(state, file)
    model.load_state_dict(state, strict=True)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__


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
        when the bundle was trained, and ``weights_sha256_``: the checksum the weights were checked against, or
        None for a bundle written without one (eegrobust 0.2 and earlier), which loads with a logged warning.

    Raises
    ------
    ModelFileError
        For a missing or malformed ``model.json`` (bad JSON, wrong types or inconsistent fields, each named), a
        wrong format name or version, an unknown architecture, channels differing from ``ch_names``, a weights
        file that is not safetensors (a pickle is detected by its first bytes and never loaded) or does not match
        the checksum in ``model.json``, tensors that do not fit the architecture, and NaN/Inf or garbage weights.
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
        check_channels(meta["ch_names"], ch_names, path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"no {WEIGHTS_FILE} in {path}; re-save the model with models.save_bundle.")
    _check_weights_file(weights)
    try:
        model = instantiate(meta["arch"], meta["init_kwargs"], ch_names=meta["ch_names"], sfreq=meta["sfreq"],
                            classes=meta["classes"], random_state=None)
    except Exception as err:  # init_kwargs come from the file: any failure to build means they are bad
        raise ModelFileError(f"cannot rebuild arch {meta['arch']!r} from init_kwargs in {path / CONFIG_FILE}: "
                             f"{_first_line(err)}") from err
    _load_state(model, weights, meta.get("weights_sha256"))
    model.weights_sha256_ = meta.get("weights_sha256")  # None: a bundle without the checksum, loaded unchecked
    _restore_training(model, meta.get("training"), path / CONFIG_FILE)
    return model.eval()


def _restore_training(model, training, file: Path) -> None:
    if not training:
        return
    from .train import TrainConfig

    if training.get("config") is not None:
        try:
            model.train_config_ = TrainConfig.from_dict(training["config"])
        except (TypeError, ValueError) as err:
            raise ModelFileError(f"training.config in {file} is not a valid TrainConfig: {_first_line(err)}; "
                                 "re-save the model with models.save_bundle.") from err
    model.regularization_ = training.get("regularization")
    model.train_data_hash_ = training.get("data_hash")
    model.best_epoch_ = training.get("best_epoch")
    model.history_ = training.get("history")
    for key, kind in (("callbacks", list), ("arm", dict)):
        if not isinstance(training.get(key), (kind, type(None))):
            raise ModelFileError(f"training.{key} in {file} must be a JSON {'list' if kind is list else 'object'} "
                                 f"or null, got {_short(training.get(key))}; re-save the model with "
                                 "models.save_bundle.")
    model.callbacks_ = training.get("callbacks")
    model.arm_ = training.get("arm")
