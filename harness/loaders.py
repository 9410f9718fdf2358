"""Load a saved BCI model that eegrobust may not have made, without ever unpickling arbitrary objects.

Supported: an eegrobust bundle (folder with model.json + weights.safetensors); a state dict saved by
``torch.save(model.state_dict())`` or skorch/braindecode ``EEGClassifier.save_params(f_params=...)`` (needs
``arch``); a safetensors state dict (needs ``arch``); a TorchScript file; an ONNX file (forward only: no
gradients, so white-box attacks are skipped). A file that would need ``torch.load(weights_only=False)`` is
refused.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import EEGData
from ..data._checks import ConfigError, ModelFileError, check_option

ARCHES = ("eegnet", "deep4", "shallow")
SAFE_SAVE_HINT = ("save a safe checkpoint instead: torch.save(model.state_dict(), 'model.pt'), "
                  "clf.save_params(f_params='model.pt'), or models.save_bundle(model, 'bundle/')")


def sniff_format(path: Path) -> str:
    """Name the format of a model file from its bytes: bundle, torchscript, torch_zip, pickle, safetensors, onnx."""
    if path.is_dir() or path.suffix == ".json":
        return "bundle"
    head = path.read_bytes()[:16]
    if not head:
        raise ModelFileError(f"model file {str(path)!r} is empty.")
    if head[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile:
            raise ModelFileError(f"model file {str(path)!r} is a truncated or damaged zip archive; save it again.")
        return "torchscript" if any("/code/" in n or n.endswith("constants.pkl") for n in names) else "torch_zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if path.suffix == ".onnx":
        return "onnx"
    raise ModelFileError(f"cannot tell the format of {str(path)!r}: not an eegrobust bundle, a torch state dict, "
                         "TorchScript, safetensors or ONNX file.")


def _safe_state_dict(path: Path, fmt: str) -> dict:
    if fmt == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelFileError(f"cannot read safetensors file {str(path)!r}: {err}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelFileError(f"{str(path)!r} holds pickled Python objects, which could run code when loaded; "
                             f"eegrobust never unpickles them. {SAFE_SAVE_HINT}.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ModelFileError(f"cannot read {str(path)!r} as a torch checkpoint (truncated or damaged?): "
                             f"{str(err).splitlines()[0]}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors); "
                             f"{SAFE_SAVE_HINT}.")
    return obj


def _load_state(net: nn.Module, state: dict, arch: str) -> None:
    own = net.state_dict()
    for name, tensor in state.items():
        if name not in own:
            raise ModelFileError(f"state dict tensor {name!r} does not exist in {arch}; is --arch right?")
        if own[name].shape != tensor.shape:
            raise ModelFileError(f"state dict tensor {name!r} has shape {tuple(tensor.shape)} but {arch} built for "
                                 f"these epochs expects {tuple(own[name].shape)}; check --arch and the epochs.")
    missing = [n for n in own if n not in state]
    if missing:
        raise ModelFileError(f"state dict lacks {len(missing)} tensor(s) of {arch}, first {missing[0]!r}; "
                             "is --arch right?")
    net.load_state_dict(state)


def _braindecode_net(arch: str, data: EEGData, state: dict) -> nn.Module:
    """The braindecode class of ``arch`` with braindecode's defaults (a foreign checkpoint used those), else
    eegrobust's sfreq-scaled settings; the first that fits the state dict wins."""
    from ..models import build_model
    from ..models.registry import get_spec

    cls = get_spec(arch).net_class()
    shape = dict(n_chans=data.n_chans, n_outputs=data.n_classes, n_times=data.n_times, sfreq=data.sfreq)
    candidates = []
    try:
        candidates.append(cls(**shape))
    except Exception:  # noqa: BLE001 - braindecode defaults may not build for a short window
        pass
    candidates.append(build_model(arch, data).net)
    error = None
    for net in candidates:
        try:
            _load_state(net, state, arch)
            return net.eval()
        except ModelFileError as err:
            error = error or err
    raise error


class ForeignModel(nn.Module):
    """A foreign net with the preprocessing it expects put in front: microvolts in, logits out.

    Parameters
    ----------
    net : torch.nn.Module
    input_unit : {"uV", "V"}
        What the net was trained on; ``"V"`` multiplies the microvolt input by 1e-6.
    mean, std : ndarray of shape (n_chans,) or None
        Per-channel standardization applied before the net (``--standardize per-channel``).
    """

    def __init__(self, net, *, input_unit="uV", mean=None, std=None, n_chans=None, n_times=None, ch_names=None,
                 classes=None):
        super().__init__()
        self.net = net
        self.factor = 1e-6 if input_unit == "V" else 1.0
        self.register_buffer("mean", None if mean is None else torch.as_tensor(mean, dtype=torch.float32)[:, None])
        self.register_buffer("std", None if std is None else torch.as_tensor(std, dtype=torch.float32)[:, None])
        self.n_chans, self.n_times, self.ch_names, self.classes = n_chans, n_times, ch_names, classes

    def forward(self, X):
        if self.mean is not None:
            X = (X - self.mean) / self.std
        return self.net(X * self.factor)


class OnnxNet(nn.Module):
    """An ONNX model run by onnxruntime: forward only (no gradients)."""

    def __init__(self, path: Path):
        super().__init__()
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"onnxruntime cannot load {str(path)!r}: {str(err).splitlines()[0]}") from None
        inputs = [i for i in self.session.get_inputs() if "float" in i.type]
        if len(inputs) != 1:
            raise ModelFileError(f"ONNX model {str(path)!r} has {len(inputs)} float inputs; eegrobust needs exactly "
                                 "one input of shape (batch, n_chans, n_times).")
        self.input_name = inputs[0].name
        self.input_shape = inputs[0].shape

    def forward(self, X):
        if X.requires_grad:
            raise ConfigError("an ONNX model has no gradients: use gray-box or black-box attacks.")
        out = self.session.run(None, {self.input_name: X.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(out).to(X.device)


def load_victim(path, data: EEGData, *, arch: str | None = None, input_unit: str = "uV",
                standardize: str = "none") -> tuple[nn.Module, dict]:
    """Load the model at ``path`` as a module mapping microvolt epochs like ``data`` to logits.

    Returns the module and a description: format, arch, whether it has gradients.
    """
    from ..models import load_bundle

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model {str(path)!r} does not exist.")
    check_option("--input-unit", input_unit, ("uV", "V"))
    check_option("--standardize", standardize, ("none", "per-channel"))
    fmt = sniff_format(path)
    info = {"format": fmt, "arch": arch, "gradients": True, "path": str(path)}
    if fmt == "bundle":
        model = load_bundle(path if path.is_dir() else path.parent, ch_names=data.ch_names)
        info["arch"] = model.arch
        return model.eval(), info
    if fmt == "torchscript":
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as err:
            raise ModelFileError(f"cannot load TorchScript {str(path)!r}: {str(err).splitlines()[0]}") from None
    elif fmt == "onnx":
        net = OnnxNet(path)
        info["gradients"] = False
    else:
        state = _safe_state_dict(path, fmt)
        if arch is None:
            raise ConfigError(f"{str(path)!r} is a bare state dict: say which architecture it belongs to with "
                              f"--arch {{{','.join(ARCHES)}}}.")
        check_option("--arch", arch, ARCHES)
        net = _braindecode_net(arch, data, state)
    mean = std = None
    if standardize == "per-channel":
        mean, std = data.X.mean(axis=(0, 2)), data.X.std(axis=(0, 2)) + 1e-6
    model = ForeignModel(net, input_unit=input_unit, mean=mean, std=std, n_chans=data.n_chans,
                         n_times=data.n_times, classes=data.classes).eval()
    _check_forward(model, data, path)
    return model, info


def _check_forward(model, data: EEGData, path: Path) -> None:
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(data.X[:2]))
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure here means the model does not fit the epochs
        raise ModelFileError(f"model {str(path)!r} fails on epochs of shape (n, {data.n_chans}, {data.n_times}): "
                             f"{str(err).splitlines()[0][:200]}") from None
    if out.ndim != 2 or out.shape[1] != data.n_classes:
        raise ModelFileError(f"model {str(path)!r} returns shape {tuple(out.shape)} for 2 trials; expected (2, "
                             f"{data.n_classes}) logits for classes {list(data.classes)}.")
