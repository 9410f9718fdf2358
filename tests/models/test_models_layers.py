"""models.layers: braindecode's height-axis layers switched to their 1-D forms, EEGNet's first block fused in eval mode
and its long temporal kernel through the FFT.

The switch must be invisible except for speed: same outputs, input gradients and weight gradients (float round-off),
the same state dict."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eegrobust.models import build_model, layers
from eegrobust.models.layers import (
    SWITCHES,
    AvgPool2dAlongTime,
    Conv1dCombinedConv,
    Conv2dAlongTime,
    ExpELU,
    FoldedDeep4Net,
    FoldedShallowFBCSPNet,
    FusedEEGNet,
    MaxPool2dAlongTime,
    _fft_length,
    _first_block,
    conv1d_long,
    fast_layers,
)

SHAPE = {"n_chans": 6, "n_times": 512, "sfreq": 128.0, "n_outputs": 2}
BASES = {new: old for old, new in SWITCHES.items()}


def _pair(arch):
    """The eegrobust model (switched) and the same weights under braindecode's own classes."""
    model = build_model(arch, **SHAPE, random_state=0).eval()
    ref = build_model(arch, **SHAPE, random_state=0).eval()
    for m in ref.modules():
        if type(m) in BASES:
            m.__class__ = BASES[type(m)]
    ref.load_state_dict(model.state_dict())
    return model, ref


def _input_grad(model, X, y):
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)
    return grad


@pytest.mark.parametrize("arch, expected", [
    ("shallow", {FoldedShallowFBCSPNet, Conv1dCombinedConv, Conv2dAlongTime, AvgPool2dAlongTime}),
    ("deep4", {FoldedDeep4Net, Conv1dCombinedConv, Conv2dAlongTime, MaxPool2dAlongTime, ExpELU}),
    ("eegnet", {FusedEEGNet, ExpELU}),
])
def test_models_are_switched_and_state_dict_unchanged(arch, expected):
    model, ref = _pair(arch)
    assert {type(m) for m in model.modules()} & set(BASES) == expected
    assert not {type(m) for m in ref.modules()} & set(BASES)
    assert list(model.state_dict()) == list(ref.state_dict())


def _random_batchnorm_stats(*models):
    """Running statistics and affine parameters far from their initial values (as after training)."""
    gen = torch.Generator().manual_seed(5)
    for model in models:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                gen.manual_seed(hash(m.num_features) % 1000)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.num_features, generator=gen))
                    m.bias.copy_(torch.randn(m.num_features, generator=gen))


@pytest.mark.parametrize("arch", ["shallow", "deep4", "eegnet"])
def test_same_outputs_and_input_gradients(arch):
    model, ref = _pair(arch)
    _random_batchnorm_stats(model, ref)
    for p in list(model.parameters()) + list(ref.parameters()):
        p.requires_grad_(False)  # an attack freezes the weights
    torch.manual_seed(1)
    X, y = torch.randn(8, 6, 512) * 20, torch.arange(8) % 2
    with torch.no_grad():  # prediction
        torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    scale = g_ref.abs().max()
    assert scale > 0
    # Deep4Net's max-pooling can route a near-tie differently under round-off; the bulk must agree.
    rel = (g - g_ref).abs() / scale
    assert float(rel.max()) < (1e-4 if arch == "shallow" else 5e-2)
    assert float((torch.sign(g) == torch.sign(g_ref)).float().mean()) > 0.999


@pytest.mark.parametrize("arch", ["shallow", "deep4", "eegnet"])
def test_training_matches_braindecode(arch, monkeypatch):
    """Train mode runs the 1-D forms (EEGNet: its first block unfused, the temporal conv through the FFT, the spatial
    conv as a sum over electrodes); the outputs and every weight gradient are braindecode's to float round-off, so a
    trained victim is what braindecode trains."""
    model, ref = _pair(arch)
    calls = []
    for name in ("conv1d", "max_pool1d", "avg_pool1d"):
        op = getattr(F, name)
        monkeypatch.setattr(F, name, lambda *a, _op=op, _n=name, **k: calls.append(_n) or _op(*a, **k))
    model.train(), ref.train()
    X, y = torch.randn(4, 6, 512) * 20, torch.tensor([0, 1, 0, 1])
    torch.manual_seed(3)
    out = model(X)
    torch.manual_seed(3)  # the same dropout masks
    out_ref = ref(X)
    torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-5)
    F.cross_entropy(out, y).backward()
    F.cross_entropy(out_ref, y).backward()
    # (a bias followed by training-mode BatchNorm has a zero gradient up to round-off: compare on the common scale)
    largest = max(float(p.grad.abs().max()) for p in ref.parameters())
    for (name, p), p_ref in zip(model.named_parameters(), ref.parameters()):
        scale = max(float(p_ref.grad.abs().max()), 1e-3 * largest)
        assert float((p.grad - p_ref.grad).abs().max()) < 1e-3 * scale, name
    monkeypatch.undo()
    assert (calls != []) == (arch != "eegnet")  # EEGNet's 64-sample temporal kernel runs through the FFT
    if arch == "eegnet":
        fft_kernels = []
        correlate = layers._fft_correlate
        monkeypatch.setattr(layers, "_fft_correlate",
                            lambda x, w, *a: fft_kernels.append(w.shape) or correlate(x, w, *a))
        model(X)
        assert fft_kernels == [torch.Size([8, 1, 64])]  # the temporal conv alone: the block is not fused in training


def test_combined_conv_runs_conv1d_in_every_mode(monkeypatch):
    layer = next(m for m in build_model("shallow", **SHAPE, random_state=0).modules()
                 if isinstance(m, Conv1dCombinedConv))
    calls, conv1d = [], F.conv1d
    monkeypatch.setattr(F, "conv1d", lambda *a, **k: calls.append(1) or conv1d(*a, **k))
    x = torch.randn(2, 1, 512, 6, requires_grad=True)
    layer.train()(x)
    with torch.no_grad():
        layer.eval()(x.detach())
    assert calls == [1, 1]
    calls.clear()
    other = torch.randn(2, 1, 512, 5)  # not this layer's electrodes: braindecode's conv2d (and its error)
    with pytest.raises(RuntimeError):
        layer(other)
    assert calls == []


@pytest.mark.parametrize("overrides", [{"F1": 4, "D": 3, "F2": 12, "kernel_length": 31}, {"F1": 16, "D": 1, "F2": 16},
                                       {"F1": 4, "D": 2, "F2": 8, "kernel_length": 100}])
def test_fused_eegnet_other_sizes(overrides):
    """Other filter counts, depth multipliers, kernel lengths and electrodes fuse to the same function."""
    shape = {"n_chans": 5, "n_times": 300, "sfreq": 100.0, "n_outputs": 3}
    model = build_model("eegnet", **shape, random_state=0, **overrides).eval()
    ref = build_model("eegnet", **shape, random_state=0, **overrides).eval()
    ref.net.__class__ = BASES[FusedEEGNet]
    ref.load_state_dict(model.state_dict())
    _random_batchnorm_stats(model, ref)
    assert _first_block(model.net) is not None
    X, y = torch.randn(6, 5, 300) * 20, torch.arange(6) % 3
    with torch.no_grad():
        torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
    model.requires_grad_(False), ref.requires_grad_(False)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    assert float((g - g_ref).abs().max() / g_ref.abs().max()) < 1e-4


def test_fused_eegnet_falls_back_without_running_statistics(monkeypatch):
    model, ref = _pair("eegnet")
    _random_batchnorm_stats(model, ref)
    calls = []
    monkeypatch.setattr(layers, "conv1d_long", lambda *a: calls.append(a[1].shape) or conv1d_long(*a))
    X = torch.randn(3, 6, 512) * 20
    with torch.no_grad():
        out = model(X)
    assert calls == [torch.Size([16, 6, 64])]  # one fused kernel over the 6 electrodes: F2 = 16 maps
    torch.testing.assert_close(out, ref(X), rtol=1e-5, atol=1e-5)
    calls.clear()
    model.net.bnorm_1.track_running_stats = False  # batch statistics in eval mode: not linear, no fusion
    with torch.no_grad():
        torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
    assert calls == []


@pytest.mark.parametrize("k, padding, n_times", [(64, 32, 512), (64, 0, 512), (64, 63, 100), (125, 62, 1000),
                                                 (48, 7, 97), (10, 4, 200), (65, 32, 64)])
@pytest.mark.parametrize("n_in", [1, 3])
def test_conv1d_long_is_conv1d(k, padding, n_times, n_in):
    """The FFT form is the direct correlation at float round-off, forward and every gradient (one input map: a
    broadcast product of spectra; several: a sum over maps); short kernels and paddings the FFT form does not cover
    run ``conv1d`` itself."""
    gen = torch.Generator().manual_seed(k + padding)
    x = torch.randn(4, n_in, n_times, generator=gen, requires_grad=True)
    w = torch.randn(5, n_in, k, generator=gen, requires_grad=True)
    b = torch.randn(5, generator=gen, requires_grad=True)
    out, out_ref = conv1d_long(x, w, b, padding), F.conv1d(x, w, b, padding=padding)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5 * float(out_ref.detach().abs().max()))
    up = torch.randn(out.shape, generator=gen)
    grads = torch.autograd.grad((out * up).sum(), (x, w, b))
    grads_ref = torch.autograd.grad((out_ref * up).sum(), (x, w, b))
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5 * float(g_ref.detach().abs().max()))
    assert conv1d_long(x, w, None, padding).shape == out.shape


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_conv1d_long_other_dtypes(dtype):
    """float64 goes through the FFT in float64; half precision (no CPU FFT) runs conv1d itself."""
    x, w = torch.randn(2, 3, 200, dtype=dtype), torch.randn(4, 3, 64, dtype=dtype)
    out = conv1d_long(x, w, None, 32)
    assert out.dtype == dtype
    torch.testing.assert_close(out, F.conv1d(x, w, padding=32), rtol=1e-2, atol=1e-2 * float(out.abs().max()))


def test_conv1d_long_other_shapes_are_conv1d():
    """An unbatched input runs conv1d itself; a kernel whose input maps do not match gets conv1d's own error."""
    x, w = torch.randn(3, 200), torch.randn(4, 3, 64)
    torch.testing.assert_close(conv1d_long(x, w, None, 32), F.conv1d(x, w, padding=32))
    with pytest.raises(RuntimeError, match="channels"):
        conv1d_long(torch.randn(2, 5, 200), w, None, 32)


def test_fft_length_is_the_next_fast_size():
    assert [_fft_length(n) for n in (1, 7, 896, 928, 961, 1025)] == [1, 8, 900, 960, 972, 1080]


@pytest.mark.parametrize("layer, shape", [
    (nn.Conv2d(3, 4, (5, 1), stride=(2, 1), padding=(2, 0), dilation=(2, 1), groups=1), (2, 3, 40, 1)),
    (nn.Conv2d(4, 4, (3, 1), groups=4, bias=False), (2, 4, 30, 1)),
    (nn.MaxPool2d((3, 1), stride=(2, 1), padding=(1, 0), ceil_mode=True), (2, 3, 31, 1)),
    (nn.MaxPool2d((3, 1)), (2, 3, 31, 1)),
    (nn.AvgPool2d((4, 1), stride=(3, 1), padding=(2, 0), count_include_pad=False), (2, 3, 31, 1)),
    (nn.AvgPool2d((4, 1), ceil_mode=True), (2, 3, 31, 1)),
])
def test_1d_forms_match_the_2d_ops_and_fall_back_for_other_shapes(layer, shape):
    ref = type(layer)
    net = fast_layers(nn.Sequential(layer)).eval()
    assert type(net[0]) is SWITCHES[ref]
    x = torch.randn(*shape, requires_grad=True)
    out = net(x)
    expected = ref.forward(net[0], x)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    g, = torch.autograd.grad(out.sum(), x)
    g_ref, = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5)
    wide = torch.randn(shape[0], shape[1], shape[2], 3)  # width 3: not a time-only input, the 2-D op runs
    torch.testing.assert_close(net(wide), ref.forward(net[0], wide))


def test_fast_layers_leaves_other_models_alone():
    model = build_model("eegnet", **SHAPE, random_state=0)
    before = [type(m) for m in model.net.children()]
    assert fast_layers(model) is model and type(model.net) is FusedEEGNet
    assert [type(m) for m in model.net.children()] == before  # EEGNet's kernels run along the last axis already
    other = fast_layers(nn.Sequential(nn.Conv2d(2, 2, (1, 5)), nn.AvgPool2d((1, 4)), nn.Conv2d(2, 2, 1)))
    assert [type(m) for m in other] == [nn.Conv2d, nn.AvgPool2d, nn.Conv2d]


def test_foreign_braindecode_state_dict_loads_switched(tmp_path):
    """A ShallowFBCSPNet saved by plain braindecode loads with the switch and predicts what braindecode predicts."""
    from braindecode.models import ShallowFBCSPNet

    from eegrobust.data import epochs_to_data, make_synthetic_epochs
    from eegrobust.harness.loaders import load_victim

    data = epochs_to_data(make_synthetic_epochs(n_trials=8, n_chans=6, n_times=512, sfreq=128.0, random_state=0))
    torch.manual_seed(0)
    foreign = ShallowFBCSPNet(n_chans=6, n_outputs=data.n_classes, n_times=512).eval()
    torch.save(foreign.state_dict(), tmp_path / "shallow.pt")
    model, _ = load_victim(tmp_path / "shallow.pt", data, arch="shallow")
    assert {type(m) for m in model.modules()} >= {Conv1dCombinedConv, AvgPool2dAlongTime}
    X = torch.from_numpy(data.X)
    with torch.no_grad():
        torch.testing.assert_close(model(X), foreign(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch, n_folded", [("deep4", 4), ("shallow", 1)])
def test_eval_batchnorm_folded_into_the_convolution_before_it(arch, n_folded, monkeypatch):
    """Eval mode: every BatchNorm after a 1-D-form convolution is folded into it (BatchNorm itself never runs) and
    the function is braindecode's; a BatchNorm without running statistics (or in train mode) runs as itself."""
    model, ref = _pair(arch)
    _random_batchnorm_stats(model, ref)
    calls = []
    monkeypatch.setattr(F, "batch_norm", lambda *a, _bn=F.batch_norm, **k: calls.append(1) or _bn(*a, **k))
    X, y = torch.randn(5, 6, 512) * 20, torch.arange(5) % 2
    with torch.no_grad():
        out = model(X)
    assert calls == []
    torch.testing.assert_close(out, ref(X), rtol=1e-5, atol=1e-5)
    model.requires_grad_(False), ref.requires_grad_(False)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    assert float((torch.sign(g) == torch.sign(g_ref)).float().mean()) > 0.999
    calls.clear()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == n_folded
    bns[0].track_running_stats = False  # batch statistics in eval mode: runs as a BatchNorm of its own
    bns[0].running_mean = bns[0].running_var = None
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
            break
    with torch.no_grad():
        out = model(X)
        assert calls == [1]  # the first BatchNorm ran; the others stayed folded
        torch.testing.assert_close(out, ref(X), rtol=1e-5, atol=1e-5)


def test_deep4_eval_runs_elu_after_max_pooling():
    """Eval mode: each ELU runs on the pooled maps (a third of the samples), and the logits are braindecode's
    (ELU never decreases: pooling first gives the same maxima); train mode keeps braindecode's order."""
    model, ref = _pair("deep4")
    _random_batchnorm_stats(model, ref)
    elus = [m for m in model.modules() if isinstance(m, nn.ELU)]
    lengths, ref_lengths = [], []
    for m in elus:
        m.register_forward_hook(lambda mod, inp, out: lengths.append(inp[0].shape[2]))
    first_pool = next(m for m in ref.modules() if isinstance(m, nn.MaxPool2d))
    first_pool.register_forward_hook(lambda mod, inp, out: ref_lengths.extend([inp[0].shape[2], out.shape[2]]))
    X, y = torch.randn(5, 6, 512) * 20, torch.arange(5) % 2
    with torch.no_grad():
        out = model(X)
        torch.testing.assert_close(out, ref(X), rtol=1e-5, atol=1e-5)
    assert len(lengths) == len(elus) == 4
    assert lengths[0] == ref_lengths[1] < ref_lengths[0]  # the first block's pooled length, not the conv's
    model.requires_grad_(False), ref.requires_grad_(False)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    assert float((torch.sign(g) == torch.sign(g_ref)).float().mean()) > 0.999
    lengths.clear()
    model.train()
    model(X)
    assert lengths[0] == ref_lengths[0]  # training: ELU before pooling, as braindecode


@pytest.mark.parametrize("arch", ["shallow", "deep4", "eegnet"])
def test_fused_kernels_are_reused_only_while_the_weights_stay_the_same(arch):
    """Frozen weights: the fused/folded kernels are computed once and reused; any in-place change of a weight or a
    running statistic (an optimizer step, load_state_dict) is seen at the next call; with weights that require a
    gradient the kernels are in the graph (eval-mode fine-tuning gets weight gradients)."""
    model, ref = _pair(arch)
    _random_batchnorm_stats(model, ref)
    model.requires_grad_(False), ref.requires_grad_(False)
    X = torch.randn(4, 6, 512) * 20
    with torch.no_grad():
        torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
        cached = [m for m in model.modules() if "_frozen_kernel" in m.__dict__]
        assert cached
        for m in (model, ref):  # a weight and a running statistic changed in place, identically in both
            bn = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)][-1]
            bn.running_var.mul_(3.0)
            next(p for n, p in m.named_parameters() if "conv" in n and p.ndim > 1).mul_(-2.0)
        torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
        ref.load_state_dict(model.state_dict())
        model.double(), ref.double()  # new storage and dtype for every weight: the kernel follows
        torch.testing.assert_close(model(X.double()), ref(X.double()), rtol=1e-9, atol=1e-9)
        model.float()
    model.requires_grad_(True)
    loss = model(X).square().sum()
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "conv" in n and p.ndim > 1]
    assert grads and all(g is not None and float(g.abs().max()) > 0 for g in grads)


@pytest.mark.parametrize("n_in, n_out, padding, frozen", [(25, 50, 0, True), (32, 16, 3, True), (6, 25, 0, True),
                                                          (25, 50, 0, False)])
def test_frozen_convolution_input_gradient_is_a_forward_conv(n_in, n_out, padding, frozen):
    """A frozen convolution of many maps (Deep4Net's blocks in an attack) computes its input gradient as a forward
    conv1d with the flipped, transposed kernel: braindecode's 2-D gradient at float round-off, and differentiable
    again. Few maps (the electrodes), or weights that train, take the ordinary backward pass."""
    gen = torch.Generator().manual_seed(n_in + padding)
    conv = nn.Conv2d(n_in, n_out, (10, 1), padding=(padding, 0))
    ref = nn.Conv2d(n_in, n_out, (10, 1), padding=(padding, 0))
    ref.load_state_dict(conv.state_dict())
    conv.__class__ = Conv2dAlongTime
    conv.requires_grad_(not frozen), ref.requires_grad_(not frozen)
    x = torch.randn(3, n_in, 60, 1, generator=gen, requires_grad=True)
    out, out_ref = conv(x), ref(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    fast = "InputGradAsConv" in type(out.grad_fn.next_functions[0][0]).__name__  # under the unsqueeze
    assert fast == (frozen and min(n_in, n_out) >= layers.GRAD_AS_CONV_MIN_MAPS)
    up = torch.randn(out.shape, generator=gen, requires_grad=True)
    (g,) = torch.autograd.grad((out * up).sum(), x, create_graph=True)
    (g_ref,) = torch.autograd.grad((out_ref * up).sum(), x, create_graph=True)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-5 * float(g_ref.detach().abs().max()))
    v = torch.randn(g.shape, generator=gen)  # double backward: the input gradient is linear in the output gradient
    (gg,) = torch.autograd.grad((g * v).sum(), up)
    (gg_ref,) = torch.autograd.grad((g_ref * v).sum(), up)
    torch.testing.assert_close(gg, gg_ref, rtol=1e-5, atol=1e-5 * float(gg_ref.abs().max()))


@pytest.mark.parametrize("n_times, kernel, stride", [(872, 77, 15), (60, 7, 3), (60, 6, 3), (31, 5, 5), (25, 3, 1),
                                                     (20, 20, 1)])
def test_square_and_mean_pooling_from_block_sums(n_times, kernel, stride):
    """ShallowFBCSPNet's square and mean pooling, fused in eval mode: avg_pool1d(x * x) at float round-off for
    windows that are and are not a whole number of strides, including samples no window reaches; the gradient
    (and its gradient) checked in float64."""
    gen = torch.Generator().manual_seed(n_times + kernel)
    x = torch.randn(3, 4, n_times, generator=gen)
    out = layers._SquareAvgPool.apply(x, kernel, stride)
    torch.testing.assert_close(out, F.avg_pool1d(x * x, kernel, stride), rtol=2e-6, atol=1e-7)
    x64 = torch.randn(2, 2, min(n_times, 60), generator=gen, dtype=torch.float64, requires_grad=True)
    f = lambda t: layers._SquareAvgPool.apply(t, min(kernel, x64.shape[-1]), stride)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x64,)) and torch.autograd.gradgradcheck(f, (x64,))


def test_shallow_eval_mode_runs_the_fused_square_pooling(monkeypatch):
    """Eval mode takes the fused square-and-pool (same logits and input gradients as braindecode's layers); train
    mode runs module by module."""
    model, ref = _pair("shallow")
    calls = []
    real = layers._SquareAvgPool.apply
    monkeypatch.setattr(layers._SquareAvgPool, "apply", lambda *a: calls.append(a[1:]) or real(*a))
    X = torch.randn(5, 6, 512, generator=torch.Generator().manual_seed(0)) * 20
    y = torch.tensor([0, 1, 0, 1, 1])
    torch.testing.assert_close(model(X), ref(X), rtol=1e-5, atol=1e-5)
    g, g_ref = _input_grad(model, X, y), _input_grad(ref, X, y)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5 * float(g_ref.abs().max()))
    pool = model.net.pool
    assert calls and calls[0] == (pool.kernel_size[0], pool.stride[0])
    calls.clear()
    model.train()
    with torch.no_grad():
        model(X)
    assert not calls


def test_whole_span_convolution_is_a_matrix_product_in_eval_mode_only():
    """A convolution whose kernel covers its whole input (a classifier layer) runs as F.linear in eval mode: the
    same output and gradients as conv2d; in train mode, and for a longer input, conv1d."""
    conv = nn.Conv2d(8, 3, (12, 1))
    ref = nn.Conv2d(8, 3, (12, 1))
    ref.load_state_dict(conv.state_dict())
    conv.__class__ = Conv2dAlongTime
    conv.eval()
    x = torch.randn(4, 8, 12, 1, requires_grad=True)
    out = conv(x)
    assert "Addmm" in type(out.grad_fn.next_functions[0][0].next_functions[0][0]).__name__
    torch.testing.assert_close(out, ref(x), rtol=1e-5, atol=1e-6)
    (g,), (g_ref,) = torch.autograd.grad(out.sum(), x), torch.autograd.grad(ref(x).sum(), x)
    torch.testing.assert_close(g, g_ref)
    longer = torch.randn(4, 8, 20, 1)
    torch.testing.assert_close(conv(longer), ref(longer), rtol=1e-5, atol=1e-6)
    conv.train()
    assert "Addmm" not in type(conv(x).grad_fn.next_functions[0][0]).__name__



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu_from_exp_is_elu(dtype, alpha):
    """Eval mode: ELU from ``exp`` is torch's ELU within one rounding of ``exp`` near 1 (x > 0 exactly), its input
    gradient too, and it stays differentiable twice; train mode is torch's ELU itself (training unchanged)."""
    elu = ExpELU(alpha).eval()
    x = torch.cat([torch.linspace(-20, 20, 40001, dtype=dtype), torch.tensor([0.0, -1e-30, float("nan")], dtype=dtype)])
    tol = 4 * alpha * torch.finfo(dtype).eps
    out, ref = elu(x), F.elu(x, alpha)
    assert torch.equal(out[x > 0], x[x > 0]) and torch.isnan(out[-1])
    assert float((out - ref)[:-1].abs().max()) <= tol
    xg, xr = x[:-1].clone().requires_grad_(True), x[:-1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(elu(xg), xg, torch.ones_like(xg), create_graph=True)
    (g_ref,) = torch.autograd.grad(F.elu(xr, alpha), xr, torch.ones_like(xr), create_graph=True)
    assert float((g - g_ref).abs().max()) <= tol
    (h,), (h_ref,) = torch.autograd.grad(g.sum(), xg), torch.autograd.grad(g_ref.sum(), xr)
    assert float((h - h_ref).abs().max()) <= tol
    elu.train()
    assert torch.equal(elu(x[:-1]), ref[:-1])
