"""save_bundle / load_bundle: exact round trips, and every bad bundle raises ModelFileError naming the value."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from eegrobust.data._checks import ModelFileError
from eegrobust.models import TrainConfig, build_model, fit_model, load_bundle, model_names, predict_logits, save_bundle


@pytest.fixture(scope="module")
def _bundle(tmp_path_factory, synth):
    model = fit_model(build_model("toy", synth), synth, TrainConfig(max_epochs=2, seed=0, show_progress=False))
    return save_bundle(model, tmp_path_factory.mktemp("bundle") / "toy")


@pytest.fixture
def bundle(_bundle, tmp_path):
    """A fresh copy of a valid trained toy bundle that each test may corrupt."""
    out = tmp_path / "bundle"
    out.mkdir()
    for file in _bundle.iterdir():
        (out / file.name).write_bytes(file.read_bytes())
    return out


@pytest.mark.parametrize("name", model_names())
def test_round_trip_identical_predictions(name, synth, tmp_path):
    config = TrainConfig(max_epochs=1, seed=0, show_progress=False, regularization="dropout", dropout=0.3)
    model = fit_model(build_model(name, synth, random_state=3), synth, config)  # moves BatchNorm running stats
    path = save_bundle(model, tmp_path / name)
    loaded = load_bundle(path, ch_names=synth.ch_names)
    assert type(loaded.net) is type(model.net) and loaded.init_kwargs == model.init_kwargs
    np.testing.assert_array_equal(predict_logits(loaded, synth), predict_logits(model, synth))
    assert loaded.classes == model.classes and loaded.sfreq == model.sfreq and loaded.ch_names == model.ch_names
    assert loaded.train_config_ == config and loaded.regularization_ == model.regularization_
    assert loaded.history_ == model.history_ and not loaded.training


def test_model_json_contents(_bundle, synth):
    meta = json.loads((_bundle / "model.json").read_text())
    assert meta["format"] == "eegrobust-model" and meta["format_version"] == 1 and meta["arch"] == "toy"
    assert meta["ch_names"] == list(synth.ch_names) and meta["classes"] == list(synth.classes)
    assert meta["n_times"] == synth.n_times and meta["sfreq"] == synth.sfreq
    assert meta["training"]["data_hash"] == synth.data_hash()
    assert meta["training"]["regularization"]["kind"] == "l2"
    assert len(meta["standardization"]["mean"]) == synth.n_chans
    assert set(meta["versions"]) == {"eegrobust", "torch", "braindecode", "mne", "numpy", "python"}


def test_untrained_model_round_trip(synth, tmp_path):
    model = build_model("eegnet", synth)
    loaded = load_bundle(save_bundle(model, tmp_path / "m"))
    np.testing.assert_array_equal(predict_logits(loaded, synth), predict_logits(model, synth))


def test_load_via_model_json_path(_bundle):
    load_bundle(_bundle / "model.json")


# --------------------------------------------------------------------------------------------- bad bundles
def _rewrite_json(bundle: Path, **changes):
    meta = json.loads((bundle / "model.json").read_text())
    for key, value in changes.items():
        if value is _DROP:
            meta.pop(key)
        else:
            meta[key] = value
    (bundle / "model.json").write_text(json.dumps(meta))


_DROP = object()


def test_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match=r"nope does not exist"):
        load_bundle(tmp_path / "nope")


def test_missing_json(bundle):
    (bundle / "model.json").unlink()
    with pytest.raises(ModelFileError, match=rf"no model.json in {bundle}"):
        load_bundle(bundle)


def test_malformed_json(bundle):
    (bundle / "model.json").write_text('{"format": "eegrobust-model", ')
    with pytest.raises(ModelFileError, match=r"model.json is not valid JSON \(.*line 1"):
        load_bundle(bundle)


def test_json_not_an_object(bundle):
    (bundle / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelFileError, match="must hold a JSON object, got list"):
        load_bundle(bundle)


def test_missing_keys(bundle):
    _rewrite_json(bundle, arch=_DROP, classes=_DROP)
    with pytest.raises(ModelFileError, match=r"lacks keys \['arch', 'classes'\]"):
        load_bundle(bundle)


def test_wrong_format_name(bundle):
    _rewrite_json(bundle, format="keras-model")
    with pytest.raises(ModelFileError, match=r"format 'keras-model', expected 'eegrobust-model'"):
        load_bundle(bundle)


def test_wrong_format_version(bundle):
    _rewrite_json(bundle, format_version=99)
    with pytest.raises(ModelFileError, match=r"format_version 99"):
        load_bundle(bundle)


def test_unknown_arch(bundle):
    _rewrite_json(bundle, arch="eegnett")
    with pytest.raises(ModelFileError, match=r"got 'eegnett'\. Did you mean 'eegnet'\?"):
        load_bundle(bundle)


def test_wrong_channel_set(bundle, synth):
    other = list(synth.ch_names[:-1]) + ["Cz"]
    with pytest.raises(ModelFileError, match=rf"needs \['{synth.ch_names[-1]}'\] which ch_names lacks.*has \['Cz'\]"):
        load_bundle(bundle, ch_names=other)


def test_reordered_channels(bundle, synth):
    with pytest.raises(ModelFileError, match="different order"):
        load_bundle(bundle, ch_names=synth.ch_names[::-1])


def test_tensor_shape_mismatch_names_tensor_and_shapes(bundle):
    meta = json.loads((bundle / "model.json").read_text())
    _rewrite_json(bundle, init_kwargs={**meta["init_kwargs"], "n_outputs": 3}, classes=["a", "b", "c"])
    with pytest.raises(ModelFileError, match=r"tensor 'net.final_layer.weight' has shape \(2, 512\) .* expects \(3, 512\)"):
        load_bundle(bundle)


def test_missing_tensor(bundle):
    from safetensors.torch import load_file, save_file

    state = load_file(str(bundle / "weights.safetensors"))
    state.pop("net.final_layer.bias")
    save_file(state, str(bundle / "weights.safetensors"))
    _rewrite_json(bundle, weights_sha256=_DROP)  # as a bundle from before checksums, or edited by hand
    with pytest.raises(ModelFileError, match=r"missing tensor 'net.final_layer.bias'"):
        load_bundle(bundle)


def test_missing_weights(bundle):
    (bundle / "weights.safetensors").unlink()
    with pytest.raises(ModelFileError, match="no weights.safetensors"):
        load_bundle(bundle)


def test_garbage_weights(bundle):
    (bundle / "weights.safetensors").write_bytes(b"not a tensor file at all")
    with pytest.raises(ModelFileError, match="weights.safetensors is not a safetensors file"):
        load_bundle(bundle)


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader executed code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_payload_really_runs_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload used below is live
    assert marker.exists()


def test_pickled_weights_are_refused_unopened(bundle, tmp_path):
    marker = tmp_path / "pwned"
    (bundle / "weights.safetensors").write_bytes(pickle.dumps({"net.final_layer.weight": _Payload(marker)}))
    with pytest.raises(ModelFileError, match=r"weights.safetensors is a pickle, not safetensors.*save_bundle"):
        load_bundle(bundle)
    assert not marker.exists()


def test_pickle_file_path_is_refused_unopened(tmp_path):
    marker = tmp_path / "pwned"
    file = tmp_path / "model.pkl"
    file.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(ModelFileError, match=r"model.pkl is a pickle.*never unpickles"):
        load_bundle(file)
    assert not marker.exists()


def test_torch_save_checkpoint_is_refused(bundle, tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"payload": _Payload(marker)}, bundle / "weights.safetensors")
    with pytest.raises(ModelFileError, match=r"checkpoint written by torch.save.*weights_only=True"):
        load_bundle(bundle)
    assert not marker.exists()


def test_directory_with_only_a_pt_checkpoint(tmp_path):
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(ModelFileError, match=r"no model.json .*\['model.pt'\].*not loaded"):
        load_bundle(tmp_path)


def test_save_refuses_non_decoder(tmp_path):
    with pytest.raises(TypeError, match="EEGDecoder"):
        save_bundle(torch.nn.Linear(2, 2), tmp_path / "x")
