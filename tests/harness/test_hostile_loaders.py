"""`harness.loaders.load_victim` on misused bundles and unclear refusals: each gives one line naming the value and
the fix, never a silently ignored option or an unchecked bundle.

Options a bundle records itself (--input-unit, --standardize, --arch) are refused; a bundle's weights file given
for its folder is named as such; a bundle without its checksum loads with a note; an unnamed ONNX tensor holding
NaN is named by its place; torch's pickle-protocol warning does not precede eegrobust's refusal.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from eegrobust.data import epochs_to_data, make_synthetic_epochs
from eegrobust.data._checks import ConfigError, ModelFileError
from eegrobust.harness.loaders import load_victim
from eegrobust.models import TrainConfig, build_model, fit_model, save_bundle

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _payload(marker):
    """An object that pickles as ``os.mkdir(marker)``: the folder appearing proves a loader ran code from the file."""

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    return Payload()


def _one_line(err, *names) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg


@pytest.fixture(scope="module")
def data():
    return epochs_to_data(make_synthetic_epochs(n_trials=40, snr=2.0, random_state=1))


@pytest.fixture(scope="module")
def _bundle(data, tmp_path_factory):
    model = fit_model(build_model("toy", data, random_state=0), data,
                      TrainConfig(max_epochs=2, patience=None, show_progress=False)).eval()
    return save_bundle(model, tmp_path_factory.mktemp("loaders") / "bundle")


@pytest.fixture
def bundle(_bundle, tmp_path):
    """A copy of a trained toy bundle that the test may change."""
    return shutil.copytree(_bundle, tmp_path / "bundle")


# ------------------------------------------------------------------------------------------------ 1: bundle options
@pytest.mark.parametrize("kwargs, shown", [
    ({"input_unit": "V"}, "--input-unit V"),
    ({"standardize": "per-channel"}, "--standardize per-channel"),
    ({"input_unit": "V", "standardize": "per-channel"}, "--input-unit V, --standardize per-channel"),
    ({"classes": ["1", "2"]}, "--classes 1,2"),
    ({"arch_kwargs": {"pool_mode": "max"}}, '--arch-kwargs {"pool_mode": "max"}'),
], ids=["input-unit", "standardize", "both", "classes", "arch-kwargs"])
def test_options_a_bundle_records_are_refused(bundle, data, kwargs, shown):
    for path in (bundle, bundle / "model.json"):
        with pytest.raises(ConfigError) as err:
            load_victim(path, data, **kwargs)
        msg = _one_line(err, shown, bundle, "eegrobust bundle", "Leave")
        for option in ("--input-unit", "--standardize", "--classes", "--arch-kwargs"):
            assert (option in msg) == (option in shown), (option, msg)


def test_a_bundle_takes_the_defaults_and_its_own_arch(bundle, data):
    for kwargs in ({}, {"input_unit": "uV", "standardize": "none"}, {"arch": "toy"}):
        model, info = load_victim(bundle, data, **kwargs)
        assert info["format"] == "bundle" and info["arch"] == "toy" and info["notes"] == []
        assert model(torch.from_numpy(data.X[:3])).shape == (3, 2)


@pytest.mark.parametrize("arch", ["eegnet", "shallow", "deep4"])
def test_another_arch_than_the_bundles_is_refused(bundle, data, arch):
    with pytest.raises(ConfigError) as err:
        load_victim(bundle, data, arch=arch)
    _one_line(err, f"--arch {arch}", bundle, "'toy'", "Leave --arch out")


# ------------------------------------------------------------------------------------------------ 2: weights file
def test_a_bundles_weights_file_is_named_as_such(bundle, data):
    weights = bundle / "weights.safetensors"
    for arch in (None, "eegnet"):
        with pytest.raises(ModelFileError) as err:
            load_victim(weights, data, arch=arch)
        msg = _one_line(err, weights, "weights file of the eegrobust bundle folder", f"pass the folder {str(bundle)!r}")
        assert "bare state dict" not in msg


def test_a_bundles_weights_file_alone_is_named_as_such(bundle, data, tmp_path):
    alone = tmp_path / "copied.safetensors"
    shutil.copy(bundle / "weights.safetensors", alone)
    with pytest.raises(ModelFileError) as err:
        load_victim(alone, data)
    _one_line(err, alone, "weights of an eegrobust bundle", "model.json", "bundle folder")


@pytest.mark.parametrize("beside", [None, {"format": "huggingface"}, "not json"], ids=["alone", "other-json", "bad"])
def test_a_foreign_safetensors_state_dict_still_needs_arch(data, tmp_path, beside):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(path))
    if beside is not None:
        (tmp_path / "model.json").write_text(beside if isinstance(beside, str) else json.dumps(beside))
    with pytest.raises(ConfigError) as err:
        load_victim(path, data)
    _one_line(err, path, "bare state dict", "--arch")


# ------------------------------------------------------------------------------------------------ 3: no checksum
@pytest.mark.parametrize("how", ["missing", "null"])
def test_a_bundle_without_its_checksum_loads_with_a_note(bundle, data, caplog, how):
    file = bundle / "model.json"
    meta = json.loads(file.read_text())
    if how == "missing":
        del meta["weights_sha256"]  # as eegrobust 0.2 and earlier wrote bundles
    else:
        meta["weights_sha256"] = None
    file.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="eegrobust"):
        model, info = load_victim(bundle, data)
    assert model.weights_sha256_ is None
    note, = [n for n in info["notes"] if "weights_sha256" in n]
    assert "not checked" in note and "models.save_bundle" in note
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(file) in m and "weights_sha256" in m and "models.save_bundle" in m for m in logged), logged


def test_save_bundle_always_writes_the_checksum(bundle, data, caplog):
    meta = json.loads((bundle / "model.json").read_text())
    assert isinstance(meta["weights_sha256"], str) and len(meta["weights_sha256"]) == 64
    with caplog.at_level(logging.WARNING, logger="eegrobust"):
        model, info = load_victim(bundle, data)
    assert model.weights_sha256_ == meta["weights_sha256"] and not caplog.records and info["notes"] == []


def test_a_bundle_with_a_wrong_checksum_is_still_refused(bundle, data):
    file = bundle / "model.json"
    file.write_text(json.dumps({**json.loads(file.read_text()), "weights_sha256": "0" * 64}))
    with pytest.raises(ModelFileError) as err:
        load_victim(bundle, data)
    _one_line(err, "does not match the weights_sha256")


# ------------------------------------------------------------------------------------------------ 4: unnamed ONNX
def _onnx_linear(path, data, initializers, weight_input):
    """A Flatten -> MatMul graph on epochs like ``data``, its weight read from ``weight_input``."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", weight_input], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [None, data.n_chans, data.n_times])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _weight(data, nan: bool) -> np.ndarray:
    w = np.full((data.n_chans * data.n_times, 2), 0.01, np.float32)
    if nan:
        w[0, 0] = np.nan
    return w


def test_an_unnamed_onnx_initializer_with_nan_is_named_by_index(data, tmp_path):
    from onnx import numpy_helper

    path = _onnx_linear(tmp_path / "nan.onnx", data, [numpy_helper.from_array(_weight(data, True), name="")], "")
    with pytest.raises(ModelFileError) as err:
        load_victim(path, data)
    msg = _one_line(err, path, "NaN/Inf", "initializer #0")
    assert "tensor ''" not in msg


def test_a_nan_in_the_first_of_two_unnamed_onnx_initializers_is_found(data, tmp_path):
    from onnx import numpy_helper

    inits = [numpy_helper.from_array(_weight(data, True), name=""),  # keyed by name, the next one hid this NaN
             numpy_helper.from_array(_weight(data, False), name=""),
             numpy_helper.from_array(_weight(data, False), name="w")]
    path = _onnx_linear(tmp_path / "two.onnx", data, inits, "w")
    with pytest.raises(ModelFileError) as err:
        load_victim(path, data)
    _one_line(err, path, "1 NaN/Inf", "initializer #0")


def test_an_unnamed_onnx_constant_with_nan_is_named_by_its_node(data, tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(_weight(data, True), name=""))
    nodes = [const, helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [None, data.n_chans, data.n_times])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
    path = tmp_path / "const.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ModelFileError) as err:
        load_victim(path, data)
    _one_line(err, path, "NaN/Inf", "attribute 'value' of node #0 (Constant)")


def test_a_named_onnx_initializer_with_nan_keeps_its_name(data, tmp_path):
    from onnx import numpy_helper

    path = _onnx_linear(tmp_path / "named.onnx", data, [numpy_helper.from_array(_weight(data, True), name="W")], "W")
    with pytest.raises(ModelFileError) as err:
        load_victim(path, data)
    _one_line(err, path, "first in tensor 'W'")


# ------------------------------------------------------------------------------------------------ 5: torch's warning
def _full_model(path, _marker):
    torch.save(torch.nn.Linear(2, 2), path, pickle_protocol=4)


def _legacy_objects(path, marker):
    torch.save({"w": torch.zeros(2), "o": _payload(marker)}, path, pickle_protocol=5,
               _use_new_zipfile_serialization=False)


def _raw_pickle(path, marker):
    path.write_bytes(pickle.dumps({"o": _payload(marker)}, protocol=5))


@pytest.mark.parametrize("make", [_full_model, _legacy_objects, _raw_pickle], ids=["full-model", "legacy", "raw"])
def test_a_pickle_is_refused_without_torchs_warning(data, tmp_path, make):
    path, marker = tmp_path / "model.pt", tmp_path / "pwned"
    make(path, marker)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ModelFileError) as err:
            load_victim(path, data, arch="eegnet")
    assert [str(w.message) for w in seen] == []
    _one_line(err, path, "pickled Python objects", "torch.save(model.state_dict()", "models.save_bundle")
    assert not marker.exists()
