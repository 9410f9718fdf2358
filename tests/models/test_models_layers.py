"""models.layers: braindecode's merged conv2d switched to its conv1d form for input gradients only.

The switch must be invisible except for speed: same outputs, same input gradients (float round-off), the same state
dict, and braindecode's own code path whenever weights train or no gradient is asked for."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from eegrobust.models import build_model
from eegrobust.models.layers import (
    CombinedConv,
    Conv1dCombinedConv,
    fast_input_gradients,
)

SHAPE = dict(n_chans=6, n_times=512, sfreq=128.0, n_outputs=2)


def _pair(arch):
    """The eegrobust model (switched) and the same weights under braindecode's own class."""
    model = build_model(arch, **SHAPE, random_state=0).eval()
    ref = build_model(arch, **SHAPE, random_state=0).eval()
    for m in ref.modules():
        if isinstance(m, Conv1dCombinedConv):
            m.__class__ = CombinedConv
    ref.load_state_dict(model.state_dict())
    return model, ref


def _input_grad(model, X, y):
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad


@pytest.mark.parametrize("arch", ["shallow", "deep4"])
def test_models_are_switched_and_state_dict_unchanged(arch):
    model, ref = _pair(arch)
    switched = [m for m in model.modules() if isinstance(m, CombinedConv)]
    assert switched and all(type(m) is Conv1dCombinedConv for m in switched)
    assert list(model.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize("arch", ["shallow", "deep4"])
def test_same_outputs_and_input_gradients(arch):
    model, ref = _pair(arch)
    for p in list(model.parameters()) + list(ref.parameters()):
        p.requires_grad_(False)  # an attack freezes the weights: the conv1d path
    torch.manual_seed(1)
    X, y = torch.randn(8, 6, 512) * 20, torch.arange(8) % 2
    with torch.no_grad():
        torch.testing.assert_close(model(X), ref(X), rtol=1e-4, atol=1e-4)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    scale = g_ref.abs().max()
    assert scale > 0
    # Deep4Net's max-pooling can route a near-tie differently under round-off; the bulk must agree.
    rel = (g - g_ref).abs() / scale
    assert float(rel.max()) < (1e-4 if arch == "shallow" else 5e-2)
    assert float((torch.sign(g) == torch.sign(g_ref)).float().mean()) > 0.999


def test_conv1d_path_taken_only_for_frozen_weights(monkeypatch):
    layer = next(m for m in build_model("shallow", **SHAPE, random_state=0).modules()
                 if isinstance(m, Conv1dCombinedConv))
    calls, conv1d = [], F.conv1d
    monkeypatch.setattr(F, "conv1d", lambda *a, **k: calls.append(1) or conv1d(*a, **k))
    x = torch.randn(2, 1, 512, 6, requires_grad=True)
    layer(x)  # weights train: braindecode's conv2d (training stays bit for bit braindecode's)
    with torch.no_grad():
        layer(x.detach())  # prediction: conv2d
    assert calls == []
    for p in layer.parameters():
        p.requires_grad_(False)
    assert layer(x).requires_grad and calls == [1]


def test_fast_input_gradients_leaves_other_models_alone():
    model = build_model("eegnet", **SHAPE, random_state=0)
    before = [type(m) for m in model.modules()]
    assert fast_input_gradients(model) is model
    assert [type(m) for m in model.modules()] == before


def test_foreign_braindecode_state_dict_loads_switched(tmp_path):
    """A ShallowFBCSPNet saved by plain braindecode loads with the switch and predicts what braindecode predicts."""
    from braindecode.models import ShallowFBCSPNet
    from eegrobust.data import epochs_to_data, make_synthetic_epochs
    from eegrobust.harness.loaders import load_victim

    data = epochs_to_data(make_synthetic_epochs(n_trials=8, n_chans=6, n_times=512, sfreq=128.0, random_state=0))
    torch.manual_seed(0)
    foreign = ShallowFBCSPNet(n_chans=6, n_outputs=data.n_classes, n_times=512).eval()
    torch.save(foreign.state_dict(), tmp_path / "shallow.pt")
    model, info = load_victim(tmp_path / "shallow.pt", data, arch="shallow")
    assert any(type(m) is Conv1dCombinedConv for m in model.modules())
    X = torch.from_numpy(data.X)
    with torch.no_grad():
        torch.testing.assert_close(model(X), foreign(X), rtol=1e-4, atol=1e-4)
