"""Saved models are untrusted input: every hostile or broken model file gives one line naming it, nothing runs.

Issue 11, rows 8 (TorchScript is code), 9 (bundles written atomically and readable), 10 (malformed model.json and
weights files), 11 (NaN/Inf/garbage weights named as such) and 12 (torch.export ``.pt2`` and ONNX with a static
batch and external data).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import pickle
import shutil
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.data._checks import ConfigError, ModelFileError
from eegrobust.harness.loaders import load_victim
from eegrobust.models import build_model, load_bundle, save_bundle
from eegrobust.models.io import BundleWriteError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Payload:
    """Unpickling (or evaluating) this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _one_line_naming(err, *names):
    msg = str(err.value)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


def _nan_model(model, n=3):
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.net.final_layer.weight.view(-1)[:n] = float("nan")
    return bad


def _export_onnx(model, X, folder: Path, dynamo: bool = False) -> Path:
    """An ONNX file with a static batch size and its weights in model.onnx.data beside it, as torch's default
    exporter writes: with ``dynamo=True`` (and onnxscript installed) that exporter itself (about 10 s, so only in
    the slow test); otherwise the legacy exporter with a fixed batch, its weights moved to the external file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo and importlib.util.find_spec("onnxscript") is not None:
            torch.onnx.export(model, (X,), str(path), dynamo=True, verbose=False)
        else:
            import onnx

            torch.onnx.export(model, (X,), str(path), dynamo=False)
            proto = onnx.load(str(path))
            onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location="model.onnx.data", size_threshold=0)
    assert (folder / "model.onnx.data").is_file()
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, synth):
    """A toy model (untrained: only what loading does matters here) and, on disk: a bundle, a TorchScript file,
    static- and dynamic-batch .pt2 archives and an ONNX export."""
    root = tmp_path_factory.mktemp("hostile")
    model = build_model("toy", synth, random_state=0).eval()
    save_bundle(model, root / "bundle")
    X2 = torch.from_numpy(synth.X[:2])
    torch.jit.trace(model, X2).save(str(root / "model.ts"))
    torch.export.save(torch.export.export(model, (X2,)), root / "static.pt2")
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(torch.export.export(model, (X2,), dynamic_shapes=({0: batch},)), root / "dynamic.pt2")
    _export_onnx(model, X2, root / "onnx")
    return root, model


def _logits_and_grad(model, X):
    X = torch.from_numpy(X).requires_grad_(True)
    out = model(X)
    out[:, 0].sum().backward()
    return out.detach(), X.grad


# ================================================================================ row 8: TorchScript is code
def test_torchscript_is_refused_without_trust_code(files, synth):
    root, _ = files
    before = (root / "model.ts").read_bytes()
    with pytest.raises(ModelFileError) as err:
        load_victim(root / "model.ts", synth)
    msg = _one_line_naming(err, root / "model.ts")
    assert "programs that run when loaded" in msg and "--trust-code" in msg and "trust_code=True" in msg
    assert "state dict" in msg and "bundle" in msg
    assert (root / "model.ts").read_bytes() == before


def test_torchscript_loads_with_trust_code_and_a_loud_warning(files, synth):
    root, model = files
    with pytest.warns(UserWarning, match=r"TorchScript archive .*model\.ts.* runs the code inside it"):
        victim, info = load_victim(root / "model.ts", synth, trust_code=True)
    assert info["format"] == "torchscript" and info["gradients"]
    out, grad = _logits_and_grad(victim, synth.X[:5])
    ref, ref_grad = _logits_and_grad(model, synth.X[:5])
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, ref_grad)


def _state_dict_zip(root, tmp):
    torch.save({"w": torch.zeros(2)}, tmp / "model.ts")  # a torch.save zip renamed .ts
    return tmp / "model.ts"


def _fake_code_zip(root, tmp):
    torch.save({"w": torch.zeros(2)}, tmp / "sd.pt")
    with zipfile.ZipFile(tmp / "sd.pt") as zin, zipfile.ZipFile(tmp / "fake.ts", "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item))
        zout.writestr("sd/code/__torch__/evil.py", "import os\nos.mkdir('pwned')\n")
        zout.writestr("sd/constants.pkl", b"garbage")
    return tmp / "fake.ts"


def _empty_code_zip(root, tmp):
    with zipfile.ZipFile(tmp / "empty.ts", "w") as zout:
        zout.writestr("m/code/", b"")
        zout.writestr("m/constants.pkl", b"")
    return tmp / "empty.ts"


def _truncated_torchscript(root, tmp):
    data = (root / "model.ts").read_bytes()
    (tmp / "truncated.ts").write_bytes(data[: len(data) // 2])
    return tmp / "truncated.ts"


DISGUISED = [
    # (maker, trust_code, error type, fragment)
    (_state_dict_zip, False, ConfigError, "--arch"),
    (_state_dict_zip, True, ConfigError, "--arch"),
    (_fake_code_zip, False, ModelFileError, "--trust-code"),
    (_fake_code_zip, True, ModelFileError, "cannot load TorchScript"),
    (_empty_code_zip, True, ModelFileError, "cannot load TorchScript"),
    (_truncated_torchscript, False, ModelFileError, "truncated or damaged zip"),
    (_truncated_torchscript, True, ModelFileError, "truncated or damaged zip"),
]


@pytest.mark.parametrize("maker, trust, kind, fragment", DISGUISED,
                         ids=[f"{m.__name__[1:]}-trust{t}" for m, t, _, _ in DISGUISED])
def test_a_zip_disguised_as_torchscript_is_refused_naming_it(files, synth, tmp_path, maker, trust, kind, fragment):
    root, _ = files
    path = maker(root, tmp_path)
    before = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(kind) as err:
            load_victim(path, synth, trust_code=trust)
    msg = _one_line_naming(err, path)
    assert fragment in msg and msg.rstrip(": ").strip()
    assert path.read_bytes() == before
    assert not Path("pwned").exists()


# ================================================================================ row 12: torch.export (.pt2)
@pytest.mark.parametrize("name, batch_size", [("static.pt2", 2), ("dynamic.pt2", None)])
def test_pt2_loads_with_gradients_in_batches_of_its_size(files, synth, name, batch_size):
    root, model = files
    victim, info = load_victim(root / name, synth)
    assert info["format"] == "torch_export" and info["gradients"] and info["batch_size"] == batch_size
    victim.train()  # an exported graph cannot switch modes: this must not raise
    victim.eval()
    for n in (5, 1, 2):  # 5 = two full batches and a padded one
        out, grad = _logits_and_grad(victim, synth.X[:n])
        ref, ref_grad = _logits_and_grad(model, synth.X[:n])
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(grad, ref_grad)


def _rewrite_pt2(src: Path, dst: Path, *, replace=None, add=None, drop=()) -> Path:
    """Copy a .pt2 archive entry by entry; ``replace`` maps an inner name to a function of its bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0] + "/"
        for item in zin.infolist():
            rel = item.filename[len(root):]
            if rel in drop:
                continue
            data = zin.read(item)
            if replace and rel in replace:
                data = replace[rel](data)
            zout.writestr(item, data)
        for rel, data in (add or {}).items():
            zout.writestr(root + rel, data)
    return dst


def _edit_json(fn):
    def edit(data):
        obj = json.loads(data)
        fn(obj)
        return json.dumps(obj).encode()
    return edit


def _first_expr(program, value):
    stack = [program]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expr_str" in item:
                item["expr_str"] = value
                return
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError("no expr_str in the dynamic export")


def _pickled_weight(marker):
    payload = io.BytesIO()
    torch.save(_Payload(marker), payload)

    def config(obj):
        obj["config"]["net.final_layer.bias"]["use_pickle"] = True
    return {"replace": {"data/weights/model_weights_config.json": _edit_json(config),
                        "data/weights/weight_1": lambda _: payload.getvalue()}}


def _constant(prefix):
    def make(marker):
        def config(obj):
            obj["config"]["evil"] = {"path_name": f"{prefix}0", "is_param": False, "use_pickle": False,
                                     "tensor_meta": None}
        return {"replace": {"data/constants/model_constants_config.json": _edit_json(config)},
                "add": {f"data/constants/{prefix}0": pickle.dumps(_Payload(marker))}}
    return make


def _sample_inputs(marker):
    payload = io.BytesIO()
    torch.save(_Payload(marker), payload)
    return {"replace": {"data/sample_inputs/model.pt": lambda _: payload.getvalue()}}


def _spec_context(context):
    """Put ``context`` into the dict node of the program's in_spec (the kwargs of forward)."""
    def edit(program):
        sig = program["graph_module"]["module_call_graph"][0]["signature"]
        protocol, schema = json.loads(sig["in_spec"])
        schema["children_spec"][1]["context"] = json.dumps(context)
        sig["in_spec"] = json.dumps([protocol, schema])
    return {"replace": {"models/model.json": _edit_json(edit)}}


def _spec_type(program):
    sig = program["graph_module"]["module_call_graph"][0]["signature"]
    protocol, schema = json.loads(sig["in_spec"])
    schema["children_spec"][1]["type"] = "collections.defaultdict"
    sig["in_spec"] = json.dumps([protocol, schema])


HOSTILE_PT2 = {
    # name: (source archive, how to rewrite it given the marker path, fragment of the message)
    "pickled-weight": ("static.pt2", _pickled_weight, "stored as a pickle"),
    "custom-object": ("static.pt2", _constant("custom_obj_"), "custom or opaque object"),
    "opaque-object": ("static.pt2", _constant("opaque_obj_"), "custom or opaque object"),
    "pickled-sample-inputs": ("static.pt2", _sample_inputs, "sample inputs"),
    "legacy-weights": ("static.pt2", lambda m: {"add": {"data/weights/model.pt": pickle.dumps(_Payload(m))}},
                       "legacy pickled format"),
    "sympify-eval": ("dynamic.pt2", lambda m: {"replace": {"models/model.json": _edit_json(
        lambda p: _first_expr(p, f"__import__('os').mkdir({str(m)!r})"))}}, "shape expression"),
    "guard-code": ("static.pt2", lambda m: {"replace": {"models/model.json": _edit_json(
        lambda p: p.update(guards_code=[f"__import__('os').mkdir({str(m)!r})"]))}}, "guard code"),
    "aotinductor": ("static.pt2", lambda m: {"add": {"data/aotinductor/model/model.so": b"\x7fELF"}},
                    "data/aotinductor/model/model.so"),
    "second-program": ("static.pt2", lambda m: {"add": {"models/other.json": b"{}"}}, "models/other.json"),
    "legacy-zip": ("static.pt2", lambda m: {"drop": ("archive_format",),
                                            "add": {"serialized_exported_program.json": b"{}"}}, "legacy"),
    "builtin-call": ("static.pt2", lambda m: {"replace": {"models/model.json": _edit_json(
        lambda p: [n.update(target="torch.os.mkdir") for n in p["graph_module"]["graph"]["nodes"]
                   if n["target"] == "torch.ops.aten.flatten.using_ints"])}}, "mkdir"),
    "spec-enum-import": ("static.pt2", lambda m: _spec_context(
        [{"__enum__": True, "fqn": f"{m.parent.name.replace('-', '_')}_evil:X", "name": "a"}]), "an enum"),
    "spec-defaultdict": ("static.pt2", lambda m: {"replace": {"models/model.json": _edit_json(_spec_type)}},
                         "collections.defaultdict"),
    "deep-json": ("static.pt2", lambda m: {"replace": {"models/model.json": lambda _: b"[" * 100_000}},
                  "models/model.json"),
    "not-json": ("static.pt2", lambda m: {"replace": {"models/model.json": lambda _: b"{nope"}}, "not valid JSON"),
    "no-program": ("static.pt2", lambda m: {"drop": ("models/model.json",)}, "no models/model.json"),
}


def test_sympify_payload_is_live(tmp_path):
    import sympy

    marker = tmp_path / "ran"
    sympy.sympify(f"__import__('os').mkdir({str(marker)!r})")  # what torch.export.load would do with it
    assert marker.exists()


def test_spec_enum_payload_is_live(files, tmp_path, monkeypatch):
    root, _ = files
    marker = tmp_path / "ran"
    (tmp_path / "live_evil.py").write_text(f"import os\nos.mkdir({str(marker)!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rewrite = _spec_context([{"__enum__": True, "fqn": "live_evil:X", "name": "a"}])
    path = _rewrite_pt2(root / "static.pt2", tmp_path / "m.pt2", **rewrite)
    with contextlib.suppress(Exception):  # torch 2.14 fails after the import; the import is the point
        torch.export.load(path)
    assert marker.exists()  # so torch.export.load alone imports what a file names


def test_rewritten_pt2_without_changes_still_loads(files, synth, tmp_path):
    root, _ = files
    for name in ("static.pt2", "dynamic.pt2"):
        load_victim(_rewrite_pt2(root / name, tmp_path / name), synth)


@pytest.mark.parametrize("case", sorted(HOSTILE_PT2))
def test_hostile_pt2_is_refused_and_nothing_runs(files, synth, tmp_path, case, monkeypatch):
    root, _ = files
    source, rewrite, fragment = HOSTILE_PT2[case]
    marker = tmp_path / "pwned"
    evil = tmp_path / f"{tmp_path.name.replace('-', '_')}_evil.py"  # a module whose import is a payload
    evil.write_text(f"import os\nos.mkdir({str(marker)!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _rewrite_pt2(root / source, tmp_path / "model.pt2", **rewrite(marker))
    before = path.read_bytes()
    with pytest.raises(ModelFileError) as err:
        victim, _ = load_victim(path, synth)
        victim(torch.from_numpy(synth.X[:2]))  # if it ever loaded, running it must not run the payload either
    msg = _one_line_naming(err, path)
    assert fragment in msg, msg
    assert not marker.exists()
    assert path.read_bytes() == before


def test_truncated_pt2_is_refused(files, synth, tmp_path):
    root, _ = files
    data = (root / "static.pt2").read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as err:
        load_victim(tmp_path / "cut.pt2", synth)
    assert "truncated or damaged" in _one_line_naming(err, tmp_path / "cut.pt2")


def test_pt2_for_other_channels_names_both_shapes(files, tmp_path):
    root, _ = files
    three = epochs_to_data(make_synthetic_epochs(n_trials=8, n_chans=3, random_state=0))
    with pytest.raises(ModelFileError) as err:
        load_victim(root / "static.pt2", three)
    assert "[2, 4, 128]" in _one_line_naming(err, root / "static.pt2") and "(n, 3, 128)" in str(err.value)


# ================================================================================ row 12: ONNX, static batch
def test_onnx_with_external_data_runs_in_batches_of_its_size(files, synth):
    root, model = files
    victim, info = load_victim(root / "onnx" / "model.onnx", synth)
    assert info["batch_size"] == 2 and not info["gradients"]
    for n in (5, 1, 2, 7):
        with torch.no_grad():
            out, ref = victim(torch.from_numpy(synth.X[:n])), model(torch.from_numpy(synth.X[:n]))
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def _onnx_copy(root, tmp, data=True):
    folder = tmp / "copy"
    folder.mkdir()
    shutil.copy(root / "onnx" / "model.onnx", folder / "model.onnx")
    if data:
        shutil.copy(root / "onnx" / "model.onnx.data", folder / "model.onnx.data")
    return folder


def _onnx_missing_data(root, tmp):
    return _onnx_copy(root, tmp, data=False) / "model.onnx", "model.onnx.data"


def _onnx_truncated_data(root, tmp):
    folder = _onnx_copy(root, tmp)
    (folder / "model.onnx.data").write_bytes((folder / "model.onnx.data").read_bytes()[:10])
    return folder / "model.onnx", "shorter than the model says"


def _onnx_data_outside(root, tmp):
    import onnx

    folder = _onnx_copy(root, tmp)
    proto = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../../etc/passwd"
    onnx.save(proto, str(folder / "model.onnx"))
    return folder / "model.onnx", "outside the model's folder"


def _onnx_nan(root, tmp):
    import onnx
    from onnx import numpy_helper

    folder = _onnx_copy(root, tmp)
    proto = onnx.load(str(folder / "model.onnx"))  # with its external data
    init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(init).copy()
    values.flat[:3] = np.nan
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    onnx.save(proto, str(folder / "nan.onnx"))
    return folder / "nan.onnx", "contain 3 NaN/Inf values"


def _onnx_garbage(root, tmp):
    (tmp / "garbage.onnx").write_bytes(os.urandom(256))
    return tmp / "garbage.onnx", "garbage.onnx"


BAD_ONNX = [_onnx_missing_data, _onnx_truncated_data, _onnx_data_outside, _onnx_nan, _onnx_garbage]


@pytest.mark.parametrize("maker", BAD_ONNX, ids=[m.__name__[6:] for m in BAD_ONNX])
def test_bad_onnx_gives_one_line_naming_the_file(files, synth, tmp_path, maker):
    root, _ = files
    path, fragment = maker(root, tmp_path)
    with pytest.raises(ModelFileError) as err:
        load_victim(path, synth)
    assert fragment in _one_line_naming(err, path)


@pytest.mark.slow
def test_onnx_from_the_default_dynamo_exporter(files, synth, tmp_path):
    pytest.importorskip("onnxscript")
    _, model = files
    path = _export_onnx(model, torch.from_numpy(synth.X[:2]), tmp_path / "dynamo", dynamo=True)
    victim, info = load_victim(path, synth)
    assert info["batch_size"] == 2
    with torch.no_grad():
        torch.testing.assert_close(victim(torch.from_numpy(synth.X[:5])), model(torch.from_numpy(synth.X[:5])),
                                   atol=1e-4, rtol=1e-4)
    (tmp_path / "dynamo" / "model.onnx.data").unlink()
    with pytest.raises(ModelFileError) as err:
        load_victim(path, synth)
    assert "model.onnx.data" in _one_line_naming(err, path) and "missing" in str(err.value)


def test_onnxruntime_failure_mid_run_is_one_line(files, synth):
    root, _ = files
    victim, _ = load_victim(root / "onnx" / "model.onnx", synth)
    with pytest.raises(ModelFileError) as err:
        victim(torch.zeros(3, 4, 64))  # a window the model was not exported for
    assert "(3, 4, 64)" in _one_line_naming(err, root / "onnx" / "model.onnx")


def test_onnx_for_other_channels_is_refused_at_load(files):
    root, _ = files
    three = epochs_to_data(make_synthetic_epochs(n_trials=8, n_chans=3, random_state=0))
    with pytest.raises(ModelFileError) as err:
        load_victim(root / "onnx" / "model.onnx", three)
    assert "(n, 3, 128)" in _one_line_naming(err, "model.onnx")


# ================================================================================ row 10: model.json and weights
def _deep(n):
    return "[" * n + "]" * n


BAD_JSON = {
    # name: (change to model.json: a dict of fields, or the whole text), fragment of the message
    "training-abc": ({"training": "abc"}, "training must be an object or null, got 'abc'"),
    "training-config-abc": ({"training": {"config": "abc"}}, "training.config must be an object"),
    "training-config-unknown": ({"training": {"config": {"max_epoch": 3}}}, "training.config"),
    "training-config-type": ({"training": {"config": {"max_epochs": "abc"}}}, "training.config"),
    "training-history-abc": ({"training": {"history": "abc"}}, "training.history must be a list"),
    "sfreq-abc": ({"sfreq": "abc"}, "sfreq must be a positive number (Hz), got 'abc'"),
    "sfreq-negative": ({"sfreq": -128.0}, "sfreq must be a positive number"),
    "sfreq-true": ({"sfreq": True}, "sfreq must be a positive number"),
    "sfreq-other": ({"sfreq": 256.0}, "init_kwargs.sfreq"),
    "n_times-abc": ({"n_times": "abc"}, "n_times must be a positive integer"),
    "n_times-float": ({"n_times": 128.5}, "n_times must be a positive integer"),
    "init_kwargs-list": ({"init_kwargs": [1, 2]}, "init_kwargs must be an object"),
    "init_kwargs-no-n_chans": ({"init_kwargs": {"n_outputs": 2}}, "init_kwargs.n_chans"),
    "init_kwargs-unknown": ({"init_kwargs": {"n_chans": 4, "n_outputs": 2, "n_times": 128, "sfreq": 128.0,
                                             "bogus": 1}}, "cannot rebuild arch 'toy' from init_kwargs"),
    "ch_names-str": ({"ch_names": "C3"}, "ch_names must be a non-empty list of distinct strings"),
    "ch_names-ints": ({"ch_names": [1, 2, 3, 4]}, "ch_names must be"),
    "ch_names-dupes": ({"ch_names": ["C3"] * 4}, "ch_names must be"),
    "ch_names-short": ({"ch_names": ["C3", "C4", "Cz"]}, "ch_names has 3 channels but init_kwargs.n_chans is 4"),
    "classes-str": ({"classes": "ab"}, "classes must be a list"),
    "classes-nested": ({"classes": [["a"], ["b"]]}, "classes must be a list"),
    "classes-three": ({"classes": ["a", "b", "c"]}, "classes has 3 names but init_kwargs.n_outputs is 2"),
    "arch-int": ({"arch": 5}, "arch in"),
    "arch-list": ({"arch": ["toy"]}, "arch in"),
    "format_version-str": ({"format_version": "1"}, "format_version '1'"),
    "checksum-abc": ({"weights_sha256": "abc"}, "weights_sha256 must be 64 hex digits"),
    "checksum-other": ({"weights_sha256": "0" * 64}, "does not match the weights_sha256"),
    "missing-keys": ({"sfreq": None, "classes": None}, "lacks keys ['sfreq', 'classes']"),
    "list": ("[1, 2]", "must hold a JSON object, got list"),
    "string": ('"abc"', "must hold a JSON object, got str"),
    "deep": (_deep(100_000), "nested too deeply"),
    "deep-field": ('{"training": ' + _deep(100_000) + "}", "nested too deeply"),
    "empty": ("", "is not valid JSON"),
    "not-utf8": (b"\xff\xfe\x00{", "is not valid JSON"),
    "nan-literal": ({"sfreq": float("nan")}, "sfreq must be a positive number"),
}


@pytest.fixture
def bundle(files, tmp_path):
    root, _ = files
    shutil.copytree(root / "bundle", tmp_path / "bundle")
    return tmp_path / "bundle"


def _write_meta(bundle, change):
    file = bundle / "model.json"
    if isinstance(change, dict):
        meta = json.loads(file.read_text())
        for key, value in change.items():
            if value is None and key in ("sfreq", "classes"):
                meta.pop(key)
            else:
                meta[key] = value
        file.write_text(json.dumps(meta))
    else:
        file.write_bytes(change if isinstance(change, bytes) else change.encode())
    return file


@pytest.mark.parametrize("load", ["load_bundle", "load_victim"])
@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_model_json_is_one_line_naming_file_and_field(bundle, synth, case, load):
    change, fragment = BAD_JSON[case]
    file = _write_meta(bundle, change)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with pytest.raises(ModelFileError) as err:
        load_bundle(bundle) if load == "load_bundle" else load_victim(bundle, synth)
    msg = _one_line_naming(err, file if "weights_sha256" not in fragment else bundle)
    assert fragment in msg, msg
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def _pickle_weights(protocol):
    return lambda marker: pickle.dumps({"net.final_layer.weight": _Payload(marker)}, protocol=protocol)


def _safetensors_header_then_pickle(marker):
    body = pickle.dumps(_Payload(marker))
    return len(body).to_bytes(8, "little") + b"{" + body  # passes a first-bytes sniff as safetensors


def _garbage_payload(bundle):
    raw = (bundle / "weights.safetensors").read_bytes()
    header = 8 + int.from_bytes(raw[:8], "little")
    return raw[:header] + np.random.default_rng(0).bytes(len(raw) - header)


BAD_WEIGHTS = {
    # name: (bytes of weights.safetensors from the marker, or from the bundle), fragment
    "pickle-protocol-0": (_pickle_weights(0), "not a safetensors file"),
    "pickle-protocol-2": (_pickle_weights(2), "is a pickle"),
    "pickle-protocol-4": (_pickle_weights(4), "is a pickle"),
    "pickle-protocol-5": (_pickle_weights(5), "is a pickle"),
    "header-then-pickle": (_safetensors_header_then_pickle, "could not read"),
    "empty": (lambda marker: b"", "not a safetensors file"),
    "truncated": ("truncated", "could not read"),
    "garbage-values": ("garbage", "weights of"),
}


@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
def test_bad_weights_file_is_one_line_and_never_unpickled(bundle, tmp_path, case):
    make, fragment = BAD_WEIGHTS[case]
    marker = tmp_path / "pwned"
    weights = bundle / "weights.safetensors"
    if make == "truncated":
        data = weights.read_bytes()[:-100]
    elif make == "garbage":
        data = _garbage_payload(bundle)
    else:
        data = make(marker)
    weights.write_bytes(data)
    _write_meta(bundle, {"weights_sha256": None})  # as a bundle from before checksums: the content check speaks
    with pytest.raises(ModelFileError) as err:
        load_bundle(bundle)
    assert fragment in _one_line_naming(err, weights)
    assert not marker.exists()


def test_a_pickle_named_safetensors_is_refused_as_a_bare_file(synth, tmp_path):
    marker = tmp_path / "pwned"
    for protocol in (0, 2, 5):
        path = tmp_path / f"model{protocol}.safetensors"
        path.write_bytes(pickle.dumps({"w": _Payload(marker)}, protocol=protocol))
        with pytest.raises(ModelFileError) as err:
            load_victim(path, synth, arch="eegnet")
        _one_line_naming(err, path)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["empty-file", "empty-dir", "dir-with-weights-only", "other-json"])
def test_empty_or_incomplete_inputs(bundle, synth, tmp_path, case):
    if case == "empty-file":
        path, fragment = tmp_path / "model.pt", "is empty"
        path.write_bytes(b"")
    elif case == "empty-dir":
        path, fragment = tmp_path / "nothing", "no model.json in"
        path.mkdir()
    elif case == "dir-with-weights-only":
        (bundle / "model.json").unlink()
        path, fragment = bundle, "no model.json in"
    else:
        path, fragment = tmp_path / "results.json", "is a JSON file, not a model"
        path.write_text("{}")
    with pytest.raises(ModelFileError) as err:
        load_victim(path, synth)
    assert fragment in _one_line_naming(err, path)


# ================================================================================ row 11: NaN/Inf weights, all formats
def _nan_bundle(model, X, tmp):
    return save_bundle(_nan_model(model), tmp / "nan-bundle"), {}


def _nan_eegnet_state(suffix):
    def make(model, X, tmp):
        net = build_model("eegnet", n_chans=4, n_times=128, sfreq=128.0, n_outputs=2).net
        state = {k: v.clone() for k, v in net.state_dict().items()}
        first = next(k for k, v in state.items() if v.is_floating_point() and v.numel() >= 3)
        state[first].view(-1)[:3] = float("inf") if suffix == ".safetensors" else float("nan")
        path = tmp / f"nan{suffix}"
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        else:
            torch.save(state, path)
        return path, {"arch": "eegnet"}
    return make


def _nan_pt2(model, X, tmp):
    torch.export.save(torch.export.export(_nan_model(model), (X,)), tmp / "nan.pt2")
    return tmp / "nan.pt2", {}


def _nan_torchscript(model, X, tmp):
    torch.jit.trace(_nan_model(model), X).save(str(tmp / "nan.ts"))
    return tmp / "nan.ts", {"trust_code": True}


NAN_FORMATS = {"bundle": _nan_bundle, "state-dict": _nan_eegnet_state(".pt"),
               "safetensors": _nan_eegnet_state(".safetensors"), "torch-export": _nan_pt2,
               "torchscript-trusted": _nan_torchscript}


@pytest.mark.parametrize("fmt", sorted(NAN_FORMATS))
def test_nan_or_inf_weights_are_named_as_such_in_every_format(files, synth, tmp_path, fmt):
    _, model = files
    path, kwargs = NAN_FORMATS[fmt](model, torch.from_numpy(synth.X[:2]), tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ModelFileError) as err:
            load_victim(path, synth, **kwargs)
    msg = _one_line_naming(err, f"weights of {path}")
    assert "contain 3 NaN/Inf values" in msg and "stochastic" not in msg


def test_garbage_magnitudes_are_named_as_garbage(files, tmp_path):
    _, model = files
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.net.final_layer.weight.view(-1)[:2] = 3e30
    path = save_bundle(bad, tmp_path / "huge")
    with pytest.raises(ModelFileError) as err:
        load_bundle(path)
    assert "contain 2 values beyond +-1e+12" in _one_line_naming(err, path / "weights.safetensors")


# ================================================================================ row 9: save_bundle
@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_save_bundle_modes_honour_the_umask(files, tmp_path, umask, file_mode, dir_mode):
    _, model = files
    old = os.umask(umask)
    try:
        path = save_bundle(model, tmp_path / "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == dir_mode
    for name in ("model.json", "weights.safetensors"):
        assert stat.S_IMODE((path / name).stat().st_mode) == file_mode


def test_save_bundle_over_an_existing_one_keeps_other_files(files, tmp_path):
    _, model = files
    path = save_bundle(build_model("toy", n_chans=4, n_times=128, sfreq=128.0, n_outputs=2), tmp_path / "b")
    (path / "README.md").write_text("mine")
    save_bundle(model, path)
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "model.json", "weights.safetensors"]
    assert (path / "README.md").read_text() == "mine"
    X = torch.from_numpy(np.zeros((2, 4, 128), dtype=np.float32))
    with torch.no_grad():
        torch.testing.assert_close(load_bundle(path)(X), model(X))


def test_a_failed_new_save_leaves_nothing(files, tmp_path, monkeypatch):
    import eegrobust.models.io as mio

    _, model = files
    real = mio._write_file
    calls = []

    def write(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(*args)

    monkeypatch.setattr(mio, "_write_file", write)
    with pytest.raises(BundleWriteError) as err:
        save_bundle(model, tmp_path / "new")
    assert "No space left on device" in _one_line_naming(err, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_at", [1, 2])
def test_an_interrupted_overwrite_never_loads_a_mixed_bundle(bundle, monkeypatch, fail_at):
    """A kill between the moves is simulated by a failing os.replace: the old bundle, or a refusal."""
    import eegrobust.models.io as mio

    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    other = build_model("toy", n_chans=4, n_times=128, sfreq=128.0, n_outputs=2, random_state=7)
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(mio.os, "replace", replace)
    with pytest.raises(BundleWriteError):
        save_bundle(other, bundle)
    monkeypatch.undo()
    assert sorted(p.name for p in bundle.iterdir()) == sorted(before)  # no temporary files left
    if fail_at == 1:
        assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
        load_bundle(bundle)
    else:  # new weights, old model.json: refused, never silently the wrong model
        with pytest.raises(ModelFileError, match="does not match the weights_sha256"):
            load_bundle(bundle)


def test_save_bundle_onto_a_file_is_refused_and_the_file_kept(files, tmp_path):
    _, model = files
    target = tmp_path / "afile"
    target.write_text("keep me")
    for path in (target, target / "bundle"):
        with pytest.raises(BundleWriteError) as err:
            save_bundle(model, path)
        assert isinstance(err.value, ModelFileError) and isinstance(err.value, OSError)
        _one_line_naming(err, path)
    assert target.read_text() == "keep me"


def test_save_bundle_into_an_unwritable_folder(files, tmp_path):
    _, model = files
    if os.geteuid() == 0:  # root writes anywhere on a normal file system; /proc takes no new files
        path = Path("/proc/eegrobust-test-bundle")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        path = locked / "bundle"
    with pytest.raises(BundleWriteError) as err:
        save_bundle(model, path)
    _one_line_naming(err, path)
    assert not path.exists()

