"""Models saved by other tools (plain braindecode and torch): what a bare state dict cannot say (settings that leave
weight shapes unchanged, the order of the outputs, the preprocessing) is given by options and stated in a note,
never silently assumed; the common checkpoint layouts load.

The reference is always the original braindecode network predicting on the input it was made for."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from eegrobust.data import EEGData, load_pair
from eegrobust.data._checks import ConfigError, DataError
from eegrobust.data.protocols import make_protocol
from eegrobust.harness.loaders import load_victim

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(cls_name, synth, **kwargs):
    import braindecode.models as bd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = getattr(bd, cls_name)(n_chans=synth.n_chans, n_outputs=synth.n_classes, n_times=synth.n_times,
                                    sfreq=synth.sfreq, **kwargs)
    torch.manual_seed(1)
    with torch.no_grad():  # weights and BatchNorm statistics away from their initial values
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.add_(0.3 * torch.randn(t.shape)) if "running_var" not in name else t.uniform_(0.5, 2.0)
    return net.eval()


def _logits(net, X):
    with torch.no_grad():
        return net(torch.as_tensor(X, dtype=torch.float32))


def test_settings_that_keep_weight_shapes_come_from_arch_kwargs(synth, tmp_path):
    """EEGNet with max pooling has the weights of EEGNet with mean pooling: without --arch-kwargs a note says which
    settings were assumed; with them the logits are the original network's."""
    net = _net("EEGNet", synth, pool_mode="max")
    torch.save(net.state_dict(), tmp_path / "m.pt")
    victim, info = load_victim(tmp_path / "m.pt", synth, arch="eegnet")
    assert any("braindecode's defaults" in n and "--arch-kwargs" in n for n in info["notes"])
    victim, info = load_victim(tmp_path / "m.pt", synth, arch="eegnet", arch_kwargs={"pool_mode": "max"})
    torch.testing.assert_close(_logits(victim, synth.X), _logits(net, synth.X), rtol=1e-4, atol=1e-4)
    assert info["arch_kwargs"] == {"pool_mode": "max"}
    for bad, fragment in (({"pool_mode": "median"}, "does not build"), ({"n_chans": 3}, "comes from the epochs"),
                          ({"no_such_setting": 1}, "does not build")):
        with pytest.raises(ConfigError) as err:
            load_victim(tmp_path / "m.pt", synth, arch="eegnet", arch_kwargs=bad)
        assert fragment in str(err.value) and "\n" not in str(err.value)


def test_output_order_from_classes(synth, tmp_path):
    """A model whose outputs are the epochs' classes in another order (alphabetical labels, say) is read in that
    order with classes=...; a list that is not the epochs' classes is refused, naming both."""
    net = _net("ShallowFBCSPNet", synth)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    names = [str(c) for c in synth.classes]
    victim, info = load_victim(tmp_path / "m.pt", synth, arch="shallow", classes=names[::-1])
    torch.testing.assert_close(_logits(victim, synth.X), _logits(net, synth.X)[:, [1, 0]], rtol=1e-4, atol=1e-4)
    assert info["classes"] == names[::-1] and any("(--classes)" in n for n in info["notes"])
    _, info = load_victim(tmp_path / "m.pt", synth, arch="shallow")
    assert any("event codes, ascending" in n for n in info["notes"])
    for bad in ([names[0], "other"], [names[0], names[0]], names + ["third"]):
        with pytest.raises(ConfigError) as err:
            load_victim(tmp_path / "m.pt", synth, arch="shallow", classes=bad)
        assert all(n in str(err.value) for n in names)


def test_volts_and_per_channel_standardization_in_that_order(synth, tmp_path):
    """A model trained on per-channel z-scores of volts sees exactly those: the unit first, then the statistics (of
    the training epochs when given)."""
    net = _net("ShallowFBCSPNet", synth)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    train = EEGData(synth.X[:24] * 1.5 + 3.0, synth.y[:24], synth.sfreq, synth.ch_names, synth.classes)
    for stats in (synth, train):
        victim, info = load_victim(tmp_path / "m.pt", synth, arch="shallow", input_unit="V",
                                   standardize="per-channel", stats_data=None if stats is synth else train)
        volts = stats.X * 1e-6
        z = (synth.X * 1e-6 - volts.mean(axis=(0, 2))[:, None]) / volts.std(axis=(0, 2))[:, None]
        torch.testing.assert_close(_logits(victim, synth.X), _logits(net, z), rtol=1e-3, atol=1e-3)
    assert info["standardize_from"] == "training epochs"


@pytest.mark.parametrize("layout", ["dataparallel", "lightning", "tutorial-checkpoint", "old-braindecode-names",
                                    "no-num-batches-tracked"])
def test_common_checkpoint_layouts_load(synth, tmp_path, layout):
    net = _net("ShallowFBCSPNet", synth)
    state = net.state_dict()
    if layout == "dataparallel":
        saved = {f"module.{k}": v for k, v in state.items()}
    elif layout == "lightning":
        saved = {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3}
    elif layout == "tutorial-checkpoint":
        saved = {"model_state_dict": state, "optimizer_state_dict": {"state": {}}, "epoch": 30, "loss": 0.4}
    elif layout == "old-braindecode-names":
        old = {new: old for old, new in net.mapping.items()}
        saved = {old.get(k, k): v for k, v in state.items()}
        assert set(saved) != set(state)
    else:
        saved = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(saved, tmp_path / "m.pt")
    victim, _ = load_victim(tmp_path / "m.pt", synth, arch="shallow")
    torch.testing.assert_close(_logits(victim, synth.X), _logits(net, synth.X), rtol=1e-4, atol=1e-4)


def test_a_test_class_without_training_trials_is_refused(synth):
    """Train and test files that name a condition differently (BrainVision 'Comment/left' against EDF 'left') would
    score every such test trial as an error; the split refuses them, naming the classes."""
    test = EEGData(synth.X + 1.0, synth.y, synth.sfreq, synth.ch_names, tuple(f"Comment/{c}" for c in synth.classes))
    data = load_pair(synth, test)
    with pytest.raises(DataError) as err:
        make_protocol("official").split(data)
    msg = str(err.value)
    assert "Comment/" in msg and "no training trials" in msg and "\n" not in msg
    np.testing.assert_array_equal(load_pair(synth, synth).y[:len(synth.y)], synth.y)


def test_test_trials_that_are_training_trials_are_refused(synth):
    """--train X --test X: every test trial is a training trial; the split refuses, counting them."""
    with pytest.raises(DataError) as err:
        make_protocol("official").split(load_pair(synth, synth))
    assert f"{len(synth.y)} test trial(s) are also training trials" in str(err.value)
    half = len(synth.y) // 2
    train = EEGData(synth.X[:half], synth.y[:half], synth.sfreq, synth.ch_names, synth.classes)
    test = EEGData(synth.X[half - 2:], synth.y[half - 2:], synth.sfreq, synth.ch_names, synth.classes)
    with pytest.raises(DataError, match="2 test trial"):
        make_protocol("official").split(load_pair(train, test))


# -- exports other tools make -------------------------------------------------------------------------------------
class _Small(torch.nn.Module):
    """A network that is not one of braindecode's: what a lab's own code exports."""

    def __init__(self, n_chans, n_times, n_out=2, image_like=False, two_outputs=False):
        super().__init__()
        self.image_like, self.two_outputs = image_like, two_outputs
        self.conv = torch.nn.Conv1d(n_chans, 4, 7)
        self.fc = torch.nn.Linear(4 * (n_times - 6), n_out)
        torch.manual_seed(0)

    def forward(self, x):
        if self.image_like:
            x = x[:, 0]
        z = self.fc(torch.relu(self.conv(x)).flatten(1))
        if self.two_outputs:
            return z.argmax(1), torch.softmax(z, 1)
        return z


def _onnx(net, example, path):
    torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}})


def test_image_like_input_and_label_plus_probability_outputs(synth, tmp_path):
    """(n, 1, channels, samples) inputs get that axis; of a label and a probability output, the probabilities are
    read as the class scores; both say so in a note, and predictions match the network's own."""
    pytest.importorskip("onnxruntime")
    x = torch.from_numpy(synth.X[:2])
    ref = _Small(synth.n_chans, synth.n_times).eval()
    image = _Small(synth.n_chans, synth.n_times, image_like=True).eval()
    image.load_state_dict(ref.state_dict())
    _onnx(image, x[:, None], tmp_path / "image.onnx")
    victim, info = load_victim(tmp_path / "image.onnx", synth)
    assert any("(n, 1, channels, samples)" in n for n in info["notes"])
    torch.testing.assert_close(_logits(victim, synth.X), _logits(ref, synth.X), rtol=1e-4, atol=1e-4)
    both = _Small(synth.n_chans, synth.n_times, two_outputs=True).eval()
    both.load_state_dict(ref.state_dict())
    _onnx(both, x, tmp_path / "both.onnx")
    victim, info = load_victim(tmp_path / "both.onnx", synth)
    assert any("is read as the class scores" in n for n in info["notes"])
    np.testing.assert_array_equal(_logits(victim, synth.X).argmax(1).numpy(), _logits(ref, synth.X).argmax(1).numpy())


def test_half_precision_torchscript_is_cast_to_float32(synth, tmp_path):
    ref = _Small(synth.n_chans, synth.n_times).eval()
    traced = torch.jit.trace(ref, torch.from_numpy(synth.X[:2]))
    traced.half().save(str(tmp_path / "half.ts"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the trust_code warning
        victim, info = load_victim(tmp_path / "half.ts", synth, trust_code=True)
    assert any("float16 weights are cast to float32" in n for n in info["notes"])
    torch.testing.assert_close(_logits(victim, synth.X), _logits(ref.half().float(), synth.X), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("case, fragment", [
    ("one_output", "a single-output binary classifier"),
    ("custom_state_dict", "export another network with torch.export (.pt2) or ONNX"),
    ("other_filters", "--arch-kwargs"),
])
def test_refusals_name_the_way_forward(synth, tmp_path, case, fragment):
    from eegrobust.data._checks import ModelFileError

    if case == "one_output":
        torch.jit.trace(_Small(synth.n_chans, synth.n_times, n_out=1).eval(),
                        torch.from_numpy(synth.X[:2])).save(str(tmp_path / "m.ts"))
        path, kwargs = tmp_path / "m.ts", {"trust_code": True}
    elif case == "custom_state_dict":
        torch.save(_Small(synth.n_chans, synth.n_times).state_dict(), tmp_path / "m.pt")
        path, kwargs = tmp_path / "m.pt", {"arch": "eegnet"}
    else:
        torch.save(_net("ShallowFBCSPNet", synth, n_filters_time=20).state_dict(), tmp_path / "m.pt")
        path, kwargs = tmp_path / "m.pt", {"arch": "shallow"}
    with warnings.catch_warnings(), pytest.raises(ModelFileError) as err:
        warnings.simplefilter("ignore", UserWarning)
        load_victim(path, synth, **kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)
