"""Load a saved BCI model that eegrobust may not have made, without ever unpickling arbitrary objects.

Supported: an eegrobust bundle (folder with model.json + weights.safetensors; options it records itself are
refused); a state dict saved by ``torch.save(model.state_dict())`` or skorch/braindecode
``EEGClassifier.save_params(f_params=...)`` (needs ``arch``); a safetensors state dict (needs ``arch``; a bundle's
own weights file is refused, naming its folder); a ``torch.export`` archive (``.pt2``) holding plain tensors
and core ATen operators; an ONNX file, with its external ``.onnx.data`` beside it (forward only: no gradients, so
white-box attacks are skipped); a TorchScript file only with ``trust_code=True``, because TorchScript archives are
programs that run when loaded. A file that would need ``torch.load(weights_only=False)`` is refused, and so is a
``.pt2`` archive with pickled parts, guard code, native code or non-ATen calls. A model exported with a static
batch size (``torch.export`` and ONNX do so by default) is run in batches of exactly that size, the last one padded.
Weights holding NaN/Inf or garbage magnitudes are refused after loading, whatever the format.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import operator
import pickle
import re
import tokenize
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import EEGData
from ..data._checks import ConfigError, DataError, ModelFileError, check_option
from ..models.io import CONFIG_FILE, FORMAT_NAME, WEIGHTS_FILE, check_finite_weights

ARCHES = ("eegnet", "deep4", "shallow")
SAFE_SAVE_HINT = ("save a safe checkpoint instead: torch.save(model.state_dict(), 'model.pt'), "
                  "clf.save_params(f_params='model.pt'), or models.save_bundle(model, 'bundle/')")
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError)


def _torch_load_weights_only(source):
    """``torch.load(source, weights_only=True)`` on the CPU, without torch's warning about the file's pickle
    protocol: a file it refuses gets eegrobust's one-line error instead."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*(pickle protocol|weights.only)", category=UserWarning)
        return torch.load(source, map_location="cpu", weights_only=True)


def _one_line(err: BaseException) -> str:
    """An exception's message on one line (its type name if it has none), at most 300 characters."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return (text[:297] + "...") if len(text) > 300 else (text or type(err).__name__)


def sniff_format(path: Path) -> str:
    """Name the format of a model file from its bytes.

    One of bundle, torchscript, torch_export, torch_zip, pickle, safetensors, onnx.
    """
    if path.is_dir() or path.name == CONFIG_FILE:
        return "bundle"
    if path.suffix == ".json":
        raise ModelFileError(f"{str(path)!r} is a JSON file, not a model: pass a bundle folder (with "
                             f"{CONFIG_FILE}) or a model file.")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {str(path)!r}: {err.strerror or err}; check its "
                             "permissions.") from None
    if not head:
        raise ModelFileError(f"model file {str(path)!r} is empty.")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except _ZIP_ERRORS:
            raise ModelFileError(f"model file {str(path)!r} is a truncated or damaged zip archive; save it "
                                 "again.") from None
        inner = [n.split("/", 1)[-1] for n in names]
        if "archive_format" in inner or "serialized_exported_program.json" in inner:
            return "torch_export"
        if any(n.startswith("code/") or n == "constants.pkl" for n in inner):
            return "torchscript"
        return "torch_zip"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if path.suffix == ".onnx":
        return "onnx"
    raise ModelFileError(f"cannot tell the format of {str(path)!r}: not an eegrobust bundle, a torch state dict, "
                         "a torch.export (.pt2), TorchScript, safetensors or ONNX file.")


# ------------------------------------------------------------------------------------------------ state dicts
def _is_bundle_folder(folder: Path) -> bool:
    """Whether ``folder`` holds the model.json of an eegrobust bundle (a small JSON object of its format)."""
    file = folder / CONFIG_FILE
    try:
        if not file.is_file() or file.stat().st_size > 50_000_000:
            return False
        meta = json.loads(file.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME


def _check_not_bundle_weights(path: Path) -> None:
    """Refuse the weights file of an eegrobust bundle given in place of its folder: read as a bare state dict,
    it would lose the bundle's architecture, classes and standardization."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            written = (f.metadata() or {}).get("format") == FORMAT_NAME  # save_bundle marks its weights so
    except Exception:  # noqa: BLE001 - a damaged file is reported when its tensors are read
        written = False
    if _is_bundle_folder(path.parent) and (written or path.name == WEIGHTS_FILE):
        raise ModelFileError(f"{str(path)!r} is the weights file of the eegrobust bundle folder "
                             f"{str(path.parent)!r}; pass the folder {str(path.parent)!r} as MODEL (it also holds "
                             f"the architecture, classes and standardization in {CONFIG_FILE}).")
    if written:
        raise ModelFileError(f"{str(path)!r} holds the weights of an eegrobust bundle (models.save_bundle), but no "
                             f"bundle {CONFIG_FILE} is beside it; pass the bundle folder that holds both "
                             f"{CONFIG_FILE} and {WEIGHTS_FILE}.")


def _safe_state_dict(path: Path, fmt: str) -> dict:
    if fmt == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ModelFileError(f"cannot read safetensors file {str(path)!r}: {_one_line(err)}") from None
    try:
        obj = _torch_load_weights_only(path)
    except pickle.UnpicklingError:
        raise ModelFileError(f"{str(path)!r} holds pickled Python objects, which could run code when loaded; "
                             f"eegrobust never unpickles them; {SAFE_SAVE_HINT}.") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise ModelFileError(f"cannot read {str(path)!r} as a torch checkpoint (truncated or damaged?): "
                             f"{_one_line(err)}") from None
    if isinstance(obj, dict) and not _is_state(obj):  # a training checkpoint: the weights under a known key
        obj = next((obj[k] for k in CHECKPOINT_KEYS if _is_state(obj.get(k))), obj)
    if not _is_state(obj):
        raise ModelFileError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors, or a "
                             f"checkpoint with one under {'/'.join(CHECKPOINT_KEYS)}); {SAFE_SAVE_HINT}.")
    return _strip_prefix(obj)


#: Where training checkpoints keep the weights: plain ``{"state_dict": ...}``, Lightning, the PyTorch tutorials'
#: ``{"model_state_dict": ..., "epoch": ...}``, and other common names.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "weights")
#: Prefixes a wrapper puts before every name: DataParallel / DistributedDataParallel (``module.``), Lightning
#: (``model.``, ``net.``), skorch's ``module_``, torch.compile (``_orig_mod.``).
WRAPPER_PREFIXES = ("module.", "model.", "net.", "module_.", "_orig_mod.")


def _is_state(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_prefix(state: dict) -> dict:
    """``state`` without a wrapper's prefix shared by every name (repeatedly: DataParallel around a compiled net)."""
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if all(str(k).startswith(p) for k in state)), None)
        if prefix is None:
            return state
        state = {k[len(prefix):]: v for k, v in state.items()}


def _load_state(net: nn.Module, state: dict, arch: str) -> None:
    own = net.state_dict()
    renamed = getattr(net, "mapping", None) or {}  # braindecode's own map from its older layer names
    if isinstance(renamed, dict) and any(k not in own and renamed.get(k) in own for k in state):
        state = {renamed.get(k, k) if k not in own else k: v for k, v in state.items()}
    for name, tensor in state.items():
        if name not in own:
            raise ModelFileError(f"state dict tensor {name!r} does not exist in {arch}; is --arch right? A state "
                                 "dict is rebuilt only as braindecode's eegnet, deep4 or shallow: export another "
                                 "network with torch.export (.pt2) or ONNX instead.")
        if own[name].shape != tensor.shape:
            raise ModelFileError(f"state dict tensor {name!r} has shape {tuple(tensor.shape)} but {arch} built for "
                                 f"these epochs expects {tuple(own[name].shape)}; check --arch and the epochs, or "
                                 "give the settings it was built with (--arch-kwargs, e.g. '{\"n_filters_time\": "
                                 "20}').")
    missing = [n for n in own if n not in state and not n.endswith("num_batches_tracked")]  # torch loads without
    if missing:
        raise ModelFileError(f"state dict lacks {len(missing)} tensor(s) of {arch}, first {missing[0]!r}; "
                             "is --arch right?")
    net.load_state_dict({**{n: t for n, t in own.items() if n.endswith("num_batches_tracked")}, **state})


def _braindecode_net(arch: str, data: EEGData, state: dict, arch_kwargs: dict | None = None) -> nn.Module:
    """The braindecode class of ``arch`` with braindecode's defaults (a foreign checkpoint used those), else
    eegrobust's sfreq-scaled settings; the first that fits the state dict wins. With ``arch_kwargs`` (the settings
    the model was built with), only braindecode's class with those settings."""
    from ..models import build_model
    from ..models.layers import fast_layers
    from ..models.registry import get_spec

    cls = get_spec(arch).net_class()
    shape = {"n_chans": data.n_chans, "n_outputs": data.n_classes, "n_times": data.n_times, "sfreq": data.sfreq}
    clash = sorted(set(arch_kwargs or {}) & set(shape))
    if clash:
        raise ConfigError(f"--arch-kwargs sets {clash[0]!r}, which comes from the epochs; leave it out.")
    candidates = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # braindecode's notes on short windows: a failed fit says what is wrong
            candidates.append(cls(**shape, **(arch_kwargs or {})))
    except Exception as err:  # noqa: BLE001 - braindecode raises TypeError/ValueError/AssertionError
        if arch_kwargs:
            raise ConfigError(f"--arch-kwargs {json.dumps(arch_kwargs)} does not build braindecode's "
                              f"{cls.__name__} for epochs of {data.n_chans} channels x {data.n_times} samples at "
                              f"{data.sfreq:g} Hz: {_one_line(err)}") from None
    if not arch_kwargs:  # braindecode's defaults may not build for a short window: eegrobust's scaled settings
        candidates.append(build_model(arch, data).net)
    error = None
    for net in candidates:
        try:
            _load_state(net, state, arch)
            return fast_layers(net).eval()
        except ModelFileError as err:
            error = error or err
    raise error


# ------------------------------------------------------------------------------------------------ TorchScript
def _load_torchscript(path: Path, trust_code: bool) -> nn.Module:
    if not trust_code:
        raise ModelFileError(f"{str(path)!r} is a TorchScript archive: TorchScript archives are programs that run "
                             "when loaded, so eegrobust does not load them by default; pass --trust-code (CLI) / "
                             "trust_code=True (API) only for a file from a trusted source, or save a state dict "
                             "(torch.save(model.state_dict(), ...)) or a bundle (models.save_bundle) instead.")
    warnings.warn(f"loading TorchScript archive {str(path)!r} with trust_code=True runs the code inside it: do this "
                  "only for files from a trusted source.", UserWarning, stacklevel=3)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
            net = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # noqa: BLE001 - torch.jit.load raises many types for damaged or fake archives
        raise ModelFileError(f"cannot load TorchScript {str(path)!r} (damaged, or not TorchScript): "
                             f"{_one_line(err)}") from None
    check_finite_weights(dict(net.state_dict()), path)
    return net


def _as_float32(net: nn.Module, path: Path, notes: list) -> nn.Module:
    """A net whose floating weights are float16, bfloat16 or float64, cast to float32 (what the attacks feed it),
    with a note; float32 nets unchanged."""
    dtypes = {t.dtype for t in [*net.parameters(), *net.buffers()] if t.is_floating_point()}
    other = sorted(str(d).replace("torch.", "") for d in dtypes - {torch.float32})
    if not other:
        return net
    try:
        net = net.float()
    except Exception as err:  # noqa: BLE001 - a scripted module may refuse; say so in one line
        raise ModelFileError(f"model {str(path)!r} has {'/'.join(other)} weights and cannot be cast to float32 "
                             f"({_one_line(err)}); save it in float32.") from None
    notes.append(f"the model's {'/'.join(other)} weights are cast to float32 (the attacks run in float32)")
    return net


# ------------------------------------------------------------------------------------------------ torch.export
_PT2_HINT = ("re-export the model with plain tensor weights (torch.export.export(model, (example,)) then "
             "torch.export.save), or save a state dict or a bundle (models.save_bundle) instead")
_PT2_ENTRIES = re.compile(r"(archive_format|archive_version|byteorder|\.data/.*|extra/.*|models/model\.json|"
                          r"data/weights/.*|data/constants/.*|data/sample_inputs/model\.pt)")
# what may appear in a shape expression: torch.export prints them with sympy.srepr and loads them with
# sympy.sympify, which evaluates the string as Python; so only these names, no attribute access, no subscripts
_SYMPY_NAMES = frozenset({"Symbol", "Integer", "Float", "Rational", "Mul", "Add", "Pow", "Max", "Min", "Abs", "Mod",
                          "floor", "ceiling", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan",
                          "StrictGreaterThan", "LessThan", "GreaterThan", "Equality", "Unequality", "And", "Or",
                          "Not", "True", "False", "true", "false", "oo", "zoo", "nan", "FloorDiv", "ModularIndexing",
                          "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift",
                          "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
                          "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
                          "RoundDecimal", "ToFloat", "Identity", "positive", "negative", "nonnegative",
                          "nonpositive", "integer", "real", "finite", "zero", "nonzero", "even", "odd",
                          "commutative", "extended_real", "precision"})
_SYMPY_OPS = frozenset({"(", ")", ",", "=", "+", "-", "*", "/", "//", "**", "%", "<", ">", "<=", ">=", "==", "!=",
                        "&", "|", "~"})
_SYMPY_STRING = re.compile(r"'([A-Za-z][A-Za-z0-9_]{0,40}|[-+]?[0-9][0-9.eE+-]{0,40})'")
# pytree containers torch.export may rebuild from the in_spec/out_spec of a program: never defaultdict (its
# context names a module that torch imports) and no enum context (torch imports the module it names, too)
_SAFE_TREESPEC_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict",
                                  "collections.namedtuple", "torch.fx.immutable_collections.immutable_list",
                                  "torch.fx.immutable_collections.immutable_dict"})
_SAFE_OPERATORS = frozenset({operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv,
                             operator.truediv, operator.mod, operator.pow, operator.neg, operator.eq, operator.ne,
                             operator.lt, operator.le, operator.gt, operator.ge, operator.and_, operator.or_,
                             math.trunc, math.ceil, math.floor, torch.sym_int, torch.sym_float, torch.sym_max,
                             torch.sym_min, torch.sym_not})


def _is_safe_sym_expr(text) -> bool:
    if not isinstance(text, str) or len(text) > 10_000:
        return False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.NUMBER):
            continue
        if not ((tok.type == tokenize.NAME and tok.string in _SYMPY_NAMES)
                or (tok.type == tokenize.OP and tok.string in _SYMPY_OPS)
                or (tok.type == tokenize.STRING and _SYMPY_STRING.fullmatch(tok.string))):
            return False
    return True


def _walk_json(value):
    """Yield (key, value) for every item of every object in a parsed JSON document (iteratively)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from item.items()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _treespec_problem(spec) -> str | None:
    """What in a serialized pytree spec would make torch import or build something by name, or None."""
    try:
        _, schema = json.loads(spec)
        stack = [schema]
        while stack:
            node = stack.pop()
            if node["type"] not in _SAFE_TREESPEC_TYPES:
                return f"a container of type {str(node['type'])[:60]!r}"
            if isinstance(node["context"], str):
                context = json.loads(node["context"])
                if any(key == "__enum__" for key, _ in _walk_json(context)):
                    return "an enum, which torch imports by module name"
            stack.extend(node["children_spec"])
    except (ValueError, TypeError, KeyError, RecursionError):
        return "a malformed spec"
    return None


def _check_pt2_archive(path: Path) -> None:
    """Refuse, with the reason, a ``.pt2`` archive whose loading could run code from it.

    ``torch.export.load`` unpickles (``torch.load(weights_only=False)``, ``pickle.loads``) tensor-subclass
    weights, constants and custom objects, and legacy archives; it falls back to unpickling sample inputs that a
    weights-only load rejects; it ``sympy.sympify``-s (Python ``eval``) the shape expressions and ``exec``-s the
    guard code from the JSON; it imports the modules that enum and defaultdict contexts of the input/output specs
    name; and it loads AOTInductor shared libraries. Only archives without any of these pass; the graph's calls
    are checked after loading (:func:`_check_exported_graph`), before anything runs.
    """
    name = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            roots = {n.split("/", 1)[0] for n in names}
            if len(roots) != 1 or any("/" not in n for n in names):
                raise ModelFileError(f"{name!r} is not a torch.export archive (expected one top-level folder, got "
                                     f"{sorted(roots)[:5]}); {_PT2_HINT}.")
            root = roots.pop() + "/"
            inner = [n[len(root):] for n in names]
            if "archive_format" not in inner:
                raise ModelFileError(f"{name!r} is a legacy torch.export archive (no archive_format entry), whose "
                                     f"weights torch.export.load unpickles; {_PT2_HINT}.")
            if zf.read(root + "archive_format").strip() != b"pt2":
                raise ModelFileError(f"{name!r} has archive_format {zf.read(root + 'archive_format')[:20]!r}, not "
                                     f"b'pt2'; {_PT2_HINT}.")
            other = [n for n in inner if not _PT2_ENTRIES.fullmatch(n)]
            if other:
                raise ModelFileError(f"{name!r} holds {other[0]!r}, which eegrobust does not load (AOTInductor "
                                     f"native code, several programs or another payload); {_PT2_HINT}.")
            if "models/model.json" not in inner:
                raise ModelFileError(f"{name!r} holds no models/model.json; {_PT2_HINT}.")
            _check_pt2_payloads(zf, root, inner, name)
            program = json.loads(zf.read(root + "models/model.json"))
            if not isinstance(program, dict):
                raise ModelFileError(f"models/model.json in {name!r} is not a JSON object; {_PT2_HINT}.")
            if program.get("guards_code"):
                raise ModelFileError(f"{name!r} holds guard code (Python source that torch.export runs when the "
                                     f"program is used); eegrobust does not run it; {_PT2_HINT}.")
            for key, value in _walk_json(program):
                problem = _treespec_problem(value) if key in ("in_spec", "out_spec") else None
                if problem:
                    raise ModelFileError(f"the input/output spec of {name!r} holds {problem}; refused because "
                                         f"torch.export.load would import or build it; {_PT2_HINT}.")
                if key == "expr_str" and not _is_safe_sym_expr(value):
                    raise ModelFileError(f"{name!r} holds a shape expression {str(value)[:60]!r} that is not plain "
                                         "sympy (torch.export.load evaluates it as Python), so it is refused; "
                                         f"{_PT2_HINT}.")
            try:
                _torch_load_weights_only(io.BytesIO(zf.read(root + "data/sample_inputs/model.pt")))
            except KeyError:
                pass
            except Exception:  # noqa: BLE001 - anything a weights-only load refuses
                raise ModelFileError(f"the sample inputs of {name!r} are pickled Python objects, which "
                                     f"torch.export.load would unpickle; {_PT2_HINT}.") from None
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"models/model.json in {name!r} is nested too deeply; {_PT2_HINT}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"a JSON file in {name!r} is not valid JSON ({_one_line(err)}); {_PT2_HINT}.") from None
    except (KeyError, *_ZIP_ERRORS) as err:
        raise ModelFileError(f"{name!r} is a truncated or damaged torch.export archive ({_one_line(err)}); "
                             "export it again.") from None


def _check_pt2_payloads(zf, root: str, inner: list, name: str) -> None:
    for kind, prefix in (("weights", "tensor weights"), ("constants", "tensor constants")):
        config_name = f"data/{kind}/model_{kind}_config.json"
        if f"data/{kind}/model.pt" in inner:
            raise ModelFileError(f"{name!r} stores its {kind} in the legacy pickled format (data/{kind}/model.pt), "
                                 f"which torch.export.load unpickles; {_PT2_HINT}.")
        if config_name not in inner:
            continue
        config = json.loads(zf.read(root + config_name))
        entries = config.get("config", {}) if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            raise ModelFileError(f"{config_name} in {name!r} is malformed; {_PT2_HINT}.")
        for fqn, meta in entries.items():
            if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                raise ModelFileError(f"{kind[:-1]} {fqn!r} in {name!r} is stored as a pickle (a tensor subclass or "
                                     f"Python object), which torch.export.load unpickles; {_PT2_HINT}.")
            if kind == "constants" and not str(meta.get("path_name", "")).startswith("tensor_"):
                raise ModelFileError(f"constant {fqn!r} in {name!r} is a custom or opaque object, which "
                                     f"torch.export.load unpickles; only {prefix} are loaded; {_PT2_HINT}.")


@contextlib.contextmanager
def _weights_only_loads():
    """While torch.export.load runs: any torch.load is weights-only, and a request to unpickle is refused."""
    real = torch.load

    def guarded(*args, weights_only=None, **kwargs):
        if weights_only is False:
            raise pickle.UnpicklingError("eegrobust refused torch.load(weights_only=False)")
        return real(*args, weights_only=True, **kwargs)

    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export", "torch.export.pt2_archive._package")]
    levels = [log.level for log in loggers]
    torch.load = guarded
    for log in loggers:  # torch logs a traceback before its fallback; the error below says it in one line
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        torch.load = real
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def _check_exported_graph(program, path: Path) -> None:
    """Every call must be a core ATen/prims operator or symbolic-size arithmetic: nothing else runs on forward."""
    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            target = node.target
            core = isinstance(target, torch._ops.OpOverload) and target.namespace in ("aten", "prims")
            if node.op != "call_function" or not (core or target in _SAFE_OPERATORS):
                raise ModelFileError(f"{str(path)!r} calls {str(target)[:80]!r} ({node.op}), which is not a core "
                                     f"ATen operator; eegrobust runs only those from a .pt2 file; {_PT2_HINT}.")


class _ExportedNet(nn.Module):
    """The module of an ExportedProgram; its graph is fixed, so train()/eval() only set the flag."""

    def __init__(self, module):
        super().__init__()
        self.module_ = module

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, X):
        return self.module_(X)


def _load_exported(path: Path) -> tuple[nn.Module, list]:
    """Load a ``.pt2`` archive checked by :func:`_check_pt2_archive`; return its module and its input shape."""
    _check_pt2_archive(path)
    try:
        with _weights_only_loads(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as err:  # noqa: BLE001 - torch.export raises many types for damaged archives
        raise ModelFileError(f"cannot load torch.export archive {str(path)!r}: {_one_line(err)}") from None
    _check_exported_graph(program, path)
    check_finite_weights({**program.state_dict, **{k: v for k, v in program.constants.items()
                                                   if isinstance(v, torch.Tensor)}}, path)
    users = program.graph_signature.user_inputs
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    vals = [nodes[u].meta.get("val") if u in nodes else None for u in users]
    if len(vals) != 1 or not isinstance(vals[0], torch.Tensor):
        raise ModelFileError(f"the program in {str(path)!r} takes {len(users)} inputs; eegrobust needs one tensor "
                             "of shape (batch, n_chans, n_times).")
    shape = [d if isinstance(d, int) else None for d in vals[0].shape]
    try:
        module = program.module()
    except Exception as err:  # noqa: BLE001
        raise ModelFileError(f"cannot build the module of {str(path)!r}: {_one_line(err)}") from None
    return _ExportedNet(module), shape


# ------------------------------------------------------------------------------------------------ ONNX
def _onnx_tensors(graph, where: str = ""):
    """Yield (label, tensor) for every initializer and constant attribute of ``graph`` and its subgraphs; the label
    is the tensor's name, or where it sits (initializer / node by index) when the name is empty."""
    import onnx

    for i, tensor in enumerate(graph.initializer):
        yield tensor.name or f"{where}initializer #{i} (unnamed)", tensor
    for j, node in enumerate(graph.node):
        here = f"{where}node #{j}{f' {node.name!r}' if node.name else ''} ({node.op_type})"
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t.name or f"attribute {attr.name!r} of {here}", attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                for k, tensor in enumerate(attr.tensors):
                    yield tensor.name or f"attribute {attr.name!r} #{k} of {here}", tensor
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _onnx_tensors(attr.g, f"{here} subgraph {attr.name!r}: ")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for k, sub in enumerate(attr.graphs):
                    yield from _onnx_tensors(sub, f"{here} subgraph {attr.name!r} #{k}: ")


def _check_onnx_file(path: Path) -> None:
    """External data files are present, inside the model's folder and long enough; weights are finite."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # onnxruntime alone still loads it; its errors are reported in one line below
        return
    name = str(path)
    try:
        proto = onnx.load(name, load_external_data=False)
        tensors = list(_onnx_tensors(proto.graph))
    except Exception as err:  # noqa: BLE001 - protobuf decoding raises its own types
        raise ModelFileError(f"{name!r} is not a readable ONNX model ({_one_line(err)}); export it again.") from None
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
    arrays = []
    for label, tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in tensor.external_data}
            location = Path(info.get("location", ""))
            if not location.parts or location.is_absolute() or ".." in location.parts:
                raise ModelFileError(f"ONNX model {name!r} points its tensor {label!r} at "
                                     f"{str(location)!r}, outside the model's folder; refused.")
            data = path.parent / location
            if not data.is_file():
                raise ModelFileError(f"ONNX model {name!r} keeps its weights in {str(data)!r}, which is missing; "
                                     f"put {str(location)!r} next to the .onnx file (torch.onnx.export writes "
                                     "them together).")
            try:
                end = int(info.get("offset", 0)) + int(info.get("length", 0))
            except ValueError:
                end = math.inf
            if end > data.stat().st_size:
                raise ModelFileError(f"external data file {str(data)!r} of ONNX model {name!r} is shorter than the "
                                     "model says (truncated?); copy it again.")
        if tensor.data_type in floats:
            try:
                array = np.array(numpy_helper.to_array(tensor, str(path.parent)), dtype=np.float64)
            except Exception as err:  # noqa: BLE001
                raise ModelFileError(f"cannot read tensor {label!r} of ONNX model {name!r}: "
                                     f"{_one_line(err)}") from None
            arrays.append((label, torch.from_numpy(array)))  # a list: names may repeat, or be empty
    check_finite_weights(arrays, path)


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


class OnnxNet(nn.Module):
    """An ONNX model run by onnxruntime: forward only (no gradients); a static batch size is honoured."""

    def __init__(self, path: Path):
        super().__init__()
        import onnxruntime as ort

        _check_onnx_file(path)
        self.path = str(path)
        try:
            self.session = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"onnxruntime cannot load {self.path!r}: {_one_line(err)}") from None
        every = self.session.get_inputs()
        inputs = [i for i in every if "float" in i.type]
        if len(inputs) != 1:
            raise ModelFileError(f"ONNX model {self.path!r} has {len(inputs)} float inputs; eegrobust needs exactly "
                                 "one input of shape (batch, n_chans, n_times).")
        if len(every) != 1 or inputs[0].type not in _ONNX_DTYPES:
            raise ModelFileError(f"ONNX model {self.path!r} takes inputs {[(i.name, i.type) for i in every]}; "
                                 "eegrobust needs exactly one float input of shape (batch, n_chans, n_times).")
        self.input_name = inputs[0].name
        self.dtype = _ONNX_DTYPES[inputs[0].type]
        outs = self.session.get_outputs()
        scores = [i for i, o in enumerate(outs) if o.type in _ONNX_DTYPES and len(o.shape or ()) == 2]
        if not scores:
            shown = ", ".join(f"{o.name} {o.type} {list(o.shape or [])}" for o in outs)
            raise ModelFileError(f"ONNX model {self.path!r} has no float output of shape (batch, n_classes) (its "
                                 f"outputs: {shown}); eegrobust needs the class scores (logits or probabilities): "
                                 "export them as an output.")
        self.output_index = scores[0]
        self.output_note = (f"of the ONNX outputs {', '.join(o.name for o in outs)}, {outs[scores[0]].name!r} is read "
                            "as the class scores" if len(outs) > 1 else None)
        self.input_shape = [d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape]
        self.batch_size = self.input_shape[0] if self.input_shape else None

    def forward(self, X):
        if X.requires_grad:
            raise ConfigError("an ONNX model has no gradients: use gray-box or black-box attacks.")
        if X.ndim != len(self.input_shape) or any(d not in (None, n) for d, n in zip(self.input_shape[1:],
                                                                                   X.shape[1:])):
            raise ModelFileError(f"ONNX model {self.path!r} takes input of shape {self.input_shape} (None: any), "
                                 f"got {tuple(X.shape)}; use epochs of the channels and window it was exported for.")
        x = X.detach().cpu().numpy().astype(self.dtype)
        size = self.batch_size
        if size is None or len(x) == size:
            out = self._run(x)
        else:
            parts = []
            for start in range(0, max(len(x), 1), size):
                chunk = x[start:start + size]
                n = len(chunk)
                filler = chunk[:1] if n else np.zeros((1, *x.shape[1:]), dtype=x.dtype)
                parts.append(self._run(np.concatenate([chunk, np.repeat(filler, size - n, axis=0)]))[:n])
            out = np.concatenate(parts)
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(X.device)

    def _run(self, x):
        try:
            return self.session.run(None, {self.input_name: x})[self.output_index]
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelFileError(f"onnxruntime failed on ONNX model {self.path!r} for input of shape {x.shape} "
                                 f"(the model takes {self.input_shape}): {_one_line(err)}") from None


class _FixedBatch(nn.Module):
    """Run ``net`` on batches of exactly ``batch_size`` trials, as a model exported with a static batch needs.

    The last batch is filled up with copies of its first trial (detached, and their outputs dropped), so the
    gradients of the real trials are those of the net.
    """

    def __init__(self, net, batch_size: int):
        super().__init__()
        self.net, self.batch_size = net, batch_size

    def forward(self, X):
        size = self.batch_size
        if len(X) == size:
            return self.net(X)
        if len(X) == 0:
            return self.net(X.new_zeros((size, *X.shape[1:])))[:0]
        parts = []
        for start in range(0, len(X), size):
            chunk = X[start:start + size]
            n = len(chunk)
            if n < size:
                chunk = torch.cat([chunk, chunk[:1].detach().expand(size - n, *chunk.shape[1:])])
            parts.append(self.net(chunk)[:n])
        return torch.cat(parts)


def _check_input_shape(path: Path, shape: list, data: EEGData) -> bool:
    """Refuse an input shape the epochs do not fit; True when the model takes (batch, 1, n_chans, n_times), the
    image-like input of many EEGNet ports (the trials are then given that axis, `_AddAxis`)."""
    if (len(shape) == 4 and shape[1] == 1 and shape[2] in (None, data.n_chans)
            and shape[3] in (None, data.n_times)):
        return True
    if len(shape) != 3 or shape[1] not in (None, data.n_chans) or shape[2] not in (None, data.n_times):
        shown = ["batch" if d is None else d for d in shape]
        raise ModelFileError(f"model {str(path)!r} takes input of shape {shown}, but the epochs have shape (n, "
                             f"{data.n_chans}, {data.n_times}) (n, channels, samples); eegrobust feeds (n, "
                             "channels, samples) or (n, 1, channels, samples): pick the channels and window it was "
                             "exported for, or export it with one of those input shapes.")
    return False


class _AddAxis(nn.Module):
    """Feed ``net`` trials of shape (n, 1, n_chans, n_times)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, X):
        return self.net(X.unsqueeze(1))


# ------------------------------------------------------------------------------------------------ the victim
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
                 classes=None, outputs=None):
        super().__init__()
        self.net = net
        self.factor = 1e-6 if input_unit == "V" else 1.0
        self.register_buffer("mean", None if mean is None else torch.as_tensor(mean, dtype=torch.float32)[:, None])
        self.register_buffer("std", None if std is None else torch.as_tensor(std, dtype=torch.float32)[:, None])
        self.register_buffer("outputs", None if outputs is None else torch.as_tensor(outputs, dtype=torch.long))
        self.n_chans, self.n_times, self.ch_names, self.classes = n_chans, n_times, ch_names, classes

    def forward(self, X):
        """Microvolts -> the model's unit -> per-channel standardization (statistics in that unit) -> the net ->
        its outputs in the order of ``classes``."""
        if self.factor != 1.0:
            X = X * self.factor
        if self.mean is not None:
            X = (X - self.mean) / self.std
        out = self.net(X)
        return out if self.outputs is None else out[:, self.outputs]


def output_order(model_classes, data: EEGData) -> list | None:
    """For ``--classes`` (the model's classes in the order of its outputs): the output of each of ``data``'s classes,
    or None when the order is the epochs' own."""
    names = [str(c).strip() for c in model_classes]
    if sorted(names) != sorted(str(c) for c in data.classes) or len(set(names)) != len(names):
        raise ConfigError(f"--classes {','.join(names)} must name each class of the epochs once, in the order of the "
                          f"model's outputs; the epochs have {','.join(map(str, data.classes))}.")
    order = [names.index(str(c)) for c in data.classes]
    return None if order == list(range(len(order))) else order


def load_victim(path, data: EEGData, *, arch: str | None = None, input_unit: str = "uV",
                standardize: str = "none", trust_code: bool = False, classes=None, arch_kwargs: dict | None = None,
                stats_data: EEGData | None = None) -> tuple[nn.Module, dict]:
    """Load the model at ``path`` as a module mapping microvolt epochs like ``data`` to logits.

    Parameters
    ----------
    arch, input_unit, standardize : see the CLI's --arch, --input-unit, --standardize
        For a foreign model only. An eegrobust bundle records its architecture, takes microvolts and standardizes
        itself: any other value than the defaults (or the bundle's own arch) is refused with a ConfigError.
    trust_code : bool, default=False
        Load a TorchScript archive, which runs code from the file (with a UserWarning); without it a TorchScript
        archive is refused. Nothing else depends on it: pickles are never loaded.
    classes : sequence of str or None
        A foreign model's classes in the order of its outputs (names of ``data``'s classes); None: the epochs'
        order (ascending event codes). An eegrobust bundle knows its classes and matches them by name.
    arch_kwargs : dict or None
        braindecode constructor settings of a bare state dict beyond the epochs' shape (``pool_mode``,
        ``n_filters_time``, ...): a state dict holds none of the settings that leave weight shapes unchanged.
    stats_data : EEGData or None
        The epochs whose per-channel mean and std ``standardize="per-channel"`` uses (the training epochs when
        given); None: ``data``.

    Returns the module and a description: format, arch, whether it has gradients, the static batch size (or None).
    """
    from ..models import load_bundle
    from ..data.containers import same_channels
    from ..models.io import check_channels

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model {str(path)!r} does not exist.")
    check_option("--input-unit", input_unit, ("uV", "V"))
    check_option("--standardize", standardize, ("none", "per-channel"))
    fmt = sniff_format(path)
    info = {"format": fmt, "arch": arch, "gradients": True, "path": str(path), "batch_size": None, "notes": []}
    if fmt == "bundle":
        folder = path if path.is_dir() else path.parent
        _check_bundle_options(folder, classes=classes, arch_kwargs=arch_kwargs, input_unit=input_unit,
                              standardize=standardize)
        model = load_bundle(folder)
        if not same_channels(model.ch_names, data.ch_names):  # the same names in another order: conform_data reorders
            check_channels(model.ch_names, data.ch_names, folder)  # names what is missing
        if arch is not None and arch != model.arch:
            raise ConfigError(f"--arch {arch} does not match the eegrobust bundle {str(folder)!r}, whose "
                              f"architecture is {model.arch!r} (recorded in its {CONFIG_FILE}). Leave --arch out.")
        info["arch"] = model.arch
        if getattr(model, "weights_sha256_", "") is None:
            info["notes"].append(f"{CONFIG_FILE} of the bundle has no weights_sha256 (a bundle from eegrobust 0.2 "
                                 "or earlier, or edited by hand), so the weights' integrity was not checked; "
                                 "re-save it with models.save_bundle to add the checksum")
        return model.eval(), info
    if fmt == "safetensors":
        _check_not_bundle_weights(path)
    if arch_kwargs and fmt in ("torchscript", "torch_export", "onnx"):
        raise ConfigError(f"--arch-kwargs is for a bare state dict; {str(path)!r} is {fmt}, which holds its own "
                          "network. Leave --arch-kwargs out.")
    outputs = None if classes is None else output_order(classes, data)
    image_like = False
    if fmt == "torchscript":
        net = _as_float32(_load_torchscript(path, trust_code), path, info["notes"])
    elif fmt == "torch_export":
        net, shape = _load_exported(path)
        image_like = _check_input_shape(path, shape, data)
        if shape[0] is not None:
            net, info["batch_size"] = _FixedBatch(net, shape[0]), shape[0]
    elif fmt == "onnx":
        net = OnnxNet(path)
        image_like = _check_input_shape(path, net.input_shape, data)
        info["gradients"], info["batch_size"] = False, net.batch_size
        if net.output_note:
            info["notes"].append(net.output_note)
    else:
        state = _safe_state_dict(path, fmt)
        check_finite_weights(state, path)
        if arch is None:
            raise ConfigError(f"{str(path)!r} is a bare state dict: say which architecture it belongs to with "
                              f"--arch {{{','.join(ARCHES)}}}.")
        check_option("--arch", arch, ARCHES)
        net = _braindecode_net(arch, data, state, arch_kwargs)
        info["arch_kwargs"] = dict(arch_kwargs or {})
        info["notes"].append(
            f"{arch} built with braindecode's defaults" + (f" and {json.dumps(arch_kwargs)}" if arch_kwargs else "")
            + ": a state dict keeps no setting that leaves weight shapes unchanged (pool_mode, activations, drop "
            "probabilities); give --arch-kwargs if the model was built otherwise")
    if image_like:
        net = _AddAxis(net)
        info["notes"].append("the model takes input of shape (n, 1, channels, samples): the trials are given that "
                             "axis")
    mean = std = None
    if standardize == "per-channel":
        ref = data if stats_data is None else stats_data
        if tuple(ref.ch_names) != tuple(data.ch_names):
            raise DataError(f"training epochs have channels {list(ref.ch_names)} but the epochs to attack "
                            f"{list(data.ch_names)}; per-channel standardization needs the same channels in the "
                            "same order.")
        factor = 1e-6 if input_unit == "V" else 1.0
        X = ref.X[~ref.is_synthetic] if (~ref.is_synthetic).any() else ref.X
        mean, std = (X * factor).mean(axis=(0, 2)), (X * factor).std(axis=(0, 2))
        std = np.where(std > 0, std, 1.0)  # a flat channel stays 0 instead of dividing by zero
        info["standardize_from"] = "training epochs" if stats_data is not None else "audit epochs"
    info["classes"] = [str(c).strip() for c in (data.classes if classes is None else classes)]
    info["notes"].append(f"the model's outputs are read as classes {', '.join(info['classes'])} in that order "
                         + ("(--classes)" if classes is not None else "(the epochs' event codes, ascending; give "
                            "--classes in the model's output order if it was trained otherwise, e.g. with "
                            "alphabetical labels)"))
    model = ForeignModel(net, input_unit=input_unit, mean=mean, std=std, n_chans=data.n_chans,
                         n_times=data.n_times, classes=data.classes, outputs=outputs).eval()
    _check_forward(model, data, path)
    return model, info


def _check_bundle_options(folder: Path, *, classes, arch_kwargs, input_unit: str, standardize: str) -> None:
    """Refuse, in one line naming them all, the options a bundle records itself (they would be ignored)."""
    given = [f"--classes {','.join(map(str, classes))}" if classes else None,
             f"--arch-kwargs {json.dumps(arch_kwargs)}" if arch_kwargs else None,
             f"--input-unit {input_unit}" if input_unit != "uV" else None,
             f"--standardize {standardize}" if standardize != "none" else None]
    given = [g for g in given if g]
    if given:
        names = " and ".join(g.split(" ", 1)[0] for g in given)
        raise ConfigError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for foreign models; "
                          f"{str(folder)!r} is an eegrobust bundle, which records its classes, settings, input unit "
                          f"(microvolts) and standardization. Leave {names} out.")


def _check_forward(model, data: EEGData, path: Path) -> None:
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(data.X[:2]))
    except (ConfigError, ModelFileError):
        raise
    except Exception as err:  # noqa: BLE001 - any failure here means the model does not fit the epochs
        raise ModelFileError(f"model {str(path)!r} fails on epochs of shape (n, {data.n_chans}, {data.n_times}): "
                             f"{_one_line(err)}") from None
    if out.ndim == 2 and out.shape[1] == 1 and data.n_classes == 2:
        raise ModelFileError(f"model {str(path)!r} returns one value per trial (shape {tuple(out.shape)} for 2 "
                             "trials), a single-output binary classifier; eegrobust needs one score per class: "
                             "export it with torch.cat([-z, z], 1) for a logit z (or torch.cat([1 - p, p], 1) for a "
                             "probability p) as its output (columns: "
                             f"{', '.join(f'{i}: {c!r}' for i, c in enumerate(data.classes))}).")
    if out.ndim != 2 or out.shape[1] != data.n_classes:
        what = " (labels, or one value per trial?)" if out.ndim == 1 else ""
        raise ModelFileError(f"model {str(path)!r} returns shape {tuple(out.shape)} for 2 trials{what}; expected (2, "
                             f"{data.n_classes}) logits for classes {list(data.classes)}.")
    if not torch.isfinite(out).all():
        raise ModelFileError(f"model {str(path)!r} returns NaN/Inf logits for the first 2 trials; the model is "
                             "broken (diverged or damaged); retrain or re-export it.")
