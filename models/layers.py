"""Faster forms of braindecode's layers (Deep4Net, ShallowFBCSPNet, EEGNet); the same sums, float round-off apart.

braindecode's Deep4Net and ShallowFBCSPNet keep time on the *height* axis of a ``(batch, features, time, 1)``
tensor: their convolutions have ``(k, 1)`` kernels and their pooling ``(k, 1)`` windows, and the first layer
(``CombinedConv``) merges the temporal and spatial filters into one ``conv2d`` with one input channel whose kernel
spans every electrode. oneDNN (mkldnn) runs these shapes slowly on CPU, forward and backward; the same operations
written along the last axis (``conv1d``, ``max_pool1d``, ``avg_pool1d``) are the same sums and maxima of the same
terms and run several times faster (``python bench/bench_step.py`` -> ``bench/step.json``: training step, attack
step and prediction, wall and CPU time).

`fast_layers` switches, in place, the layers of a network to these subclasses (same parameters, same state dict):

- `Conv2dAlongTime`, `MaxPool2dAlongTime`, `AvgPool2dAlongTime`: the 1-D form in train and eval mode (training,
  prediction, every attack). Their outputs match the 2-D ones to float round-off (tests/models/test_models_layers.py).
- `Conv1dCombinedConv`: the merged first layer as a ``conv1d`` with the electrodes as input channels (the sum runs
  in another order: float round-off).
- `FusedEEGNet`: EEGNet in eval mode runs its first block (temporal conv, BatchNorm, depthwise spatial conv,
  BatchNorm: all linear once BatchNorm uses its running statistics) as one ``conv1d`` over the electrodes; in train
  mode the same modules run one by one, the temporal conv over every electrode row and the spatial conv as a
  weighted sum.
- `conv1d_long`: a ``conv1d`` whose kernel has `FFT_MIN_KERNEL` taps or more runs through the FFT (EEGNet's
  64-sample kernels: 2.5x faster than oneDNN's direct form, forward and gradient).
- `FoldedDeep4Net`, `FoldedShallowFBCSPNet`: in eval mode each BatchNorm is folded into the 1-D-form convolution
  before it (BatchNorm with running statistics is an affine map per feature map), and ShallowFBCSPNet's square and
  mean pooling run as one step from block sums (`_SquareAvgPool`).
- In eval mode a convolution whose kernel spans its whole input (the classifier layers) runs as ``F.linear``.
- `ExpELU`: in eval mode ``nn.ELU`` is computed from ``exp`` (torch's ELU kernel evaluates ``expm1`` one element
  at a time); train mode runs torch's ELU.

Fused and folded kernels are computed once while the weights are frozen (`_frozen`) and again when a weight or a
running statistic changes.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

with warnings.catch_warnings():
    # braindecode 1.8 builds a channel list at import with a montage name MNE 1.13 deprecates: a FutureWarning about
    # braindecode's own code, which every eegrobust command printed and no user can act on
    warnings.filterwarnings("ignore", message="Montage name 'standard_1020' is deprecated", category=FutureWarning)
    try:
        from braindecode.modules import CombinedConv
    except ImportError:  # older braindecode: no merged layer, nothing to switch
        CombinedConv = None
    try:
        from braindecode.modules import Square
    except ImportError:  # older braindecode: its squaring is an Expression, left as it is
        Square = None
try:
    from braindecode.models import EEGNet
except ImportError:  # older braindecode: EEGNetv4 only, left as it is
    EEGNet = None
try:
    from braindecode.models import Deep4Net, ShallowFBCSPNet
except ImportError:
    Deep4Net = ShallowFBCSPNet = None


def _frozen(owner: nn.Module, modules, compute):
    """``compute()`` (weights derived from ``modules``' parameters and buffers: a fused or folded kernel), kept on
    ``owner`` and reused while none of those tensors requires a gradient or has changed: the same tensor objects with
    the same storage, device, dtype and version counter (an optimizer step, ``load_state_dict`` or ``.to()`` changes
    one of these). Attacks freeze the weights, so every query and gradient step reuses one kernel; with a weight that
    requires a gradient it is computed afresh, in the graph."""
    tensors = [t for m in modules if m is not None for t in (*m.parameters(), *m.buffers())]
    if any(t.requires_grad for t in tensors):
        return compute()
    try:
        state = [(t._version, t.data_ptr(), t.device, t.dtype, t.shape) for t in tensors]
    except RuntimeError:  # inference tensors keep no version counter: nothing to key on
        return compute()
    hit = owner.__dict__.get("_frozen_kernel")
    if (hit is not None and len(hit[0]) == len(tensors) and all(a is b for a, b in zip(hit[0], tensors))
            and hit[1] == state):
        return hit[2]
    with torch.no_grad():
        value = compute()
    owner.__dict__["_frozen_kernel"] = (tensors, state, value)  # the tensors themselves: identity, not a reused id
    return value


def _along_time(x: torch.Tensor, *pairs) -> bool:
    """A ``(batch, features, time, 1)`` input and a layer that is 1 wide, strides 1 and pads 0 along the last axis."""
    return x.ndim == 4 and x.shape[-1] == 1 and all(_pair(p)[1] == w for p, w in pairs)


class Conv2dAlongTime(nn.Conv2d):
    """``nn.Conv2d`` with a ``(k, 1)`` kernel, run as ``conv1d`` (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_bn(x, None)

    def forward_bn(self, x: torch.Tensor, bn: nn.BatchNorm2d | None) -> torch.Tensor:
        """``bn(self(x))``, with ``bn`` (eval mode) folded into the weight and bias; ``bn`` None: ``self(x)``."""
        if (isinstance(self.padding, str) or self.padding_mode != "zeros"
                or not _along_time(x, (self.kernel_size, 1), (self.stride, 1), (self.padding, 0), (self.dilation, 1))):
            out = super().forward(x)
            return out if bn is None else bn(out)
        if bn is None:
            weight, bias = self.weight[..., 0], self.bias
        else:
            weight, bias = _frozen(self, (self, bn), lambda: self._folded(bn))
        # squeeze, not x[..., 0]: a view, whose backward is a view too (a select's backward zero-fills and copies)
        x = x.squeeze(-1)
        if not self.training and _spans_input(x, weight, self):
            return F.linear(x.reshape(len(x), -1), weight.reshape(len(weight), -1), bias).unsqueeze(-1).unsqueeze(-1)
        if _input_grad_as_conv(x, weight, bias, self):
            return _InputGradAsConv.apply(x, weight, bias, self.padding[0]).unsqueeze(-1)
        return F.conv1d(x, weight, bias, self.stride[0], self.padding[0], self.dilation[0], self.groups).unsqueeze(-1)

    def _folded(self, bn):
        scale, shift = _bn_affine(bn)
        bias = shift if self.bias is None else self.bias * scale + shift
        return self.weight[..., 0] * scale[:, None, None], bias


def _spans_input(x: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> bool:
    """A one-group, unpadded convolution whose kernel spans the whole input (a classifier layer such as
    ShallowFBCSPNet's and Deep4Net's ``conv_classifier``): one output sample per map, a matrix product. oneDNN's
    backward-data pass of that shape is about 20x slower than the product's gradient."""
    return (x.ndim == 3 and x.shape[-1] == weight.shape[-1] and x.shape[1] == weight.shape[1] and conv.groups == 1
            and conv.padding[0] == 0 and conv.dilation[0] == 1)


#: Input and output maps from which `_InputGradAsConv` computes a frozen convolution's input gradient as a forward
#: ``conv1d`` (Deep4Net's blocks of 25-200 maps: about 2x faster than oneDNN's backward-data pass; with 6 input maps,
#: the electrodes, or 2 output maps, a classifier, slower).
GRAD_AS_CONV_MIN_MAPS = 16


def _input_grad_as_conv(x: torch.Tensor, weight: torch.Tensor, bias, conv: nn.Conv2d) -> bool:
    """A frozen stride-1, one-group convolution of many input and output maps whose input needs a gradient
    (attacks)."""
    return (x.requires_grad and torch.is_grad_enabled() and not weight.requires_grad
            and (bias is None or not bias.requires_grad) and min(weight.shape[:2]) >= GRAD_AS_CONV_MIN_MAPS
            and conv.groups == 1 and conv.stride[0] == 1 and conv.dilation[0] == 1
            and 0 <= conv.padding[0] <= weight.shape[-1] - 1)


class _InputGradAsConv(torch.autograd.Function):
    """``conv1d(x, weight, bias, padding)`` with frozen weights, whose input gradient is itself a ``conv1d``: the
    output gradient correlated with the kernel flipped in time and transposed (input and output maps swapped),
    padded by ``k - 1 - padding``. The same sums as the backward-data pass, in another order (float round-off)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(weight)
        ctx.padding = padding
        return F.conv1d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        flipped = weight.flip(-1).transpose(0, 1).contiguous()
        pad = weight.shape[-1] - 1 - ctx.padding  # padded explicitly: oneDNN's padded conv1d is slower here
        return F.conv1d(F.pad(grad, (pad, pad)), flipped), None, None, None


class _ELUFromExp(torch.autograd.Function):
    """ELU as ``alpha * (exp(min(x, 0)) - 1) + max(x, 0)``: torch's ELU kernel evaluates ``expm1`` one element at a
    time (about 10x slower than its vectorized ``exp`` here), which made ELU a fifth of an EEGNet attack step.
    ``x > 0`` gives ``x`` exactly; ``x <= 0`` gives ``exp(x) - 1`` within about 1e-7 of ``expm1`` (the rounding of
    ``exp(x)`` near 1), float round-off as elsewhere in this module. The gradient is ELU's: 1 for ``x > 0``,
    ``alpha * exp(x)`` otherwise."""

    @staticmethod
    def forward(ctx, x, alpha):
        e = torch.exp(torch.clamp(x, max=0))
        out = (e - 1) if alpha == 1 else e.mul(alpha).sub_(alpha)
        ctx.save_for_backward(x, e)
        ctx.alpha = alpha
        return out.add_(torch.relu(x))

    @staticmethod
    def backward(ctx, grad):
        x, e = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiable in x too
            e = torch.exp(torch.clamp(x, max=0))
        slope = e if ctx.alpha == 1 else torch.where(x > 0, 1.0, ctx.alpha * e)  # alpha == 1: e is 1 where x > 0
        return grad * slope, None


class ExpELU(nn.ELU):
    """``nn.ELU`` computed from ``exp`` in eval mode (`_ELUFromExp`: EEGNet's and Deep4Net's activations in every
    attack and prediction); train mode runs torch's ELU, so training is unchanged bit for bit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.alpha < 0 or x.dtype not in (torch.float32, torch.float64):
            return super().forward(x)
        return _ELUFromExp.apply(x, self.alpha)


class MaxPool2dAlongTime(nn.MaxPool2d):
    """``nn.MaxPool2d`` with a ``(k, 1)`` window, run as ``max_pool1d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride if self.stride is not None else self.kernel_size
        if (self.return_indices
                or not _along_time(x, (self.kernel_size, 1), (stride, 1), (self.padding, 0), (self.dilation, 1))):
            return super().forward(x)
        return F.max_pool1d(x.squeeze(-1), _pair(self.kernel_size)[0], _pair(stride)[0], _pair(self.padding)[0],
                            _pair(self.dilation)[0], self.ceil_mode).unsqueeze(-1)


class AvgPool2dAlongTime(nn.AvgPool2d):
    """``nn.AvgPool2d`` with a ``(k, 1)`` window, run as ``avg_pool1d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride if self.stride is not None else self.kernel_size
        if (self.divisor_override is not None
                or not _along_time(x, (self.kernel_size, 1), (stride, 1), (self.padding, 0))):
            return super().forward(x)
        return F.avg_pool1d(x.squeeze(-1), _pair(self.kernel_size)[0], _pair(stride)[0], _pair(self.padding)[0],
                            self.ceil_mode, self.count_include_pad).unsqueeze(-1)


def _windows(n_times: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """Unpadded pooling windows as blocks of ``stride`` samples: ``(n_out, m, r, n_blocks)``, each window being the
    blocks ``j .. j + m - 1`` and the ``r`` samples after them (``kernel = m * stride + r``)."""
    n_out = (n_times - kernel) // stride + 1
    m, r = divmod(kernel, stride)
    return n_out, m, r, n_out - 1 + m


def _window_sums_of_squares(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Sums of ``x * x`` over the pooling windows along the last axis: each sample is added once into
    its block of ``stride`` samples, and each window sums ``m`` blocks and ``r`` samples; ``avg_pool1d`` adds all
    ``kernel`` samples of every window (ShallowFBCSPNet: 77 per window, windows overlapping 5-fold)."""
    n_out, m, r, n_blocks = _windows(x.shape[-1], kernel, stride)
    blocks = x[..., :n_blocks * stride].reshape(*x.shape[:-1], n_blocks, stride)
    blocks = (blocks * blocks).sum(-1)
    out = blocks[..., :n_out].clone()
    for j in range(1, m):
        out += blocks[..., j:j + n_out]
    for t in range(m * stride, m * stride + r):
        tail = x[..., t:t + (n_out - 1) * stride + 1:stride]
        out += tail * tail
    return out


def _window_sums_grad(grad: torch.Tensor, n_times: int, kernel: int, stride: int) -> torch.Tensor:
    """The transpose of the window sums (without the square): each input sample's sum of the output gradients of the
    windows that hold it."""
    n_out, m, r, n_blocks = _windows(n_times, kernel, stride)
    lead = grad.shape[:-1]
    per_block = grad.new_zeros(*lead, n_blocks)
    for j in range(m):
        per_block[..., j:j + n_out] += grad
    out = grad.new_empty(*lead, n_times)
    out[..., :n_blocks * stride].view(*lead, n_blocks, stride).copy_(per_block.unsqueeze(-1).expand(
        *lead, n_blocks, stride))
    out[..., n_blocks * stride:].zero_()
    for t in range(m * stride, m * stride + r):
        out[..., t:t + (n_out - 1) * stride + 1:stride] += grad
    return out


class _SquareAvgPool(torch.autograd.Function):
    """``avg_pool1d(x * x, kernel, stride)`` (ShallowFBCSPNet's squaring and mean pooling) from block sums,
    without keeping ``x * x`` for the backward pass: the input gradient is ``2 x`` times the pooling's transpose of
    the output gradient. The same sums in another order (float round-off)."""

    @staticmethod
    def forward(ctx, x, kernel, stride):
        ctx.save_for_backward(x)
        ctx.kernel, ctx.stride = kernel, stride
        return _window_sums_of_squares(x, kernel, stride) / kernel

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        spread = _window_sums_grad(grad / ctx.kernel, x.shape[-1], ctx.kernel, ctx.stride)
        if torch.is_grad_enabled():  # create_graph=True: out of place, so the gradient is differentiable again
            return spread * x * 2, None, None
        return spread.mul_(x).mul_(2), None, None


def _square_pool_fuses(pool, x: torch.Tensor) -> bool:
    """``pool`` (an `AvgPool2dAlongTime` after a square) averages unpadded windows at least one stride long along
    the time axis of ``x``."""
    kernel, stride = _pair(pool.kernel_size), _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    return (type(pool) is AvgPool2dAlongTime and pool.divisor_override is None and not pool.ceil_mode
            and _along_time(x, (kernel, 1), (stride, 1), (pool.padding, 0)) and _pair(pool.padding)[0] == 0
            and stride[0] <= kernel[0] <= x.shape[2] and x.dtype in (torch.float32, torch.float64))


class Conv1dCombinedConv(CombinedConv if CombinedConv is not None else nn.Module):
    """braindecode's ``CombinedConv`` computed as one ``conv1d`` over the electrodes (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_bn(x, None)

    def forward_bn(self, x: torch.Tensor, bn: nn.BatchNorm2d | None) -> torch.Tensor:
        """``bn(self(x))``, with ``bn`` (eval mode) folded into the merged kernel and bias; ``bn`` None: ``self(x)``."""
        if not (x.ndim == 4 and x.shape[1] == 1 and x.shape[3] == self.conv_spat.kernel_size[1]
                and self.conv_time.kernel_size[1] == 1):
            out = super().forward(x)
            return out if bn is None else bn(out)
        merged, bias = _frozen(self, (self, bn), lambda: self._merged(bn))
        return F.conv1d(x.squeeze(1).transpose(1, 2), merged, bias).unsqueeze(-1)

    def _merged(self, bn):
        spat = self.conv_spat.weight[:, :, 0, :]  # (n_spat, n_time, n_chans)
        merged = torch.einsum("tk,stc->sck", self.conv_time.weight[:, 0, :, 0], spat)  # (n_spat, n_chans, kernel)
        bias = None
        if self.bias_time:
            bias = spat.sum(-1) @ self.conv_time.bias
        if self.bias_spat:
            bias = self.conv_spat.bias if bias is None else bias + self.conv_spat.bias
        if bn is not None:
            scale, shift = _bn_affine(bn)
            merged = merged * scale[:, None, None]
            bias = shift if bias is None else bias * scale + shift
        return merged, bias


class FusedEEGNet(EEGNet if EEGNet is not None else nn.Sequential):
    """braindecode's EEGNet whose first block runs as one ``conv1d`` in eval mode (see the module doc).

    The block is ``conv_temporal`` (1 input map, ``(1, k)`` kernel) -> ``bnorm_temporal`` -> ``conv_spatial``
    (depthwise, an ``(n_chans, 1)`` kernel) -> ``bnorm_1``; with BatchNorm's running statistics it maps the
    ``(batch, 1, n_chans, n_times)`` input linearly, so its weights multiply out into one ``(F2, n_chans, k)``
    kernel and a bias. A network of another shape runs module by module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = _first_block(self)
        if first is None:
            return super().forward(x)
        modules = list(self)
        for module in modules[:first]:
            x = module(x)
        if not (x.ndim == 4 and x.shape[1] == 1 and x.shape[2] == self.conv_spatial.kernel_size[0]):
            for module in modules[first:]:
                x = module(x)
            return x
        if self.training:
            x = self._first_block_train(x)
        else:
            weight, bias = _frozen(self, [getattr(self, n) for n in FUSED_BLOCK], lambda: _fused_first_block(self))
            x = conv1d_long(x[:, 0], weight, bias, self.conv_temporal.padding[1]).unsqueeze(2)
        for module in modules[first + len(FUSED_BLOCK):]:
            x = module(x)
        return x

    def _first_block_train(self, x: torch.Tensor) -> torch.Tensor:
        """The first block in train mode, module by module: the temporal conv through the FFT (`_fft_correlate`),
        its output laid out ``(batch, F1, n_chans, time)`` for braindecode's BatchNorm, the depthwise spatial conv as
        a matrix product over the electrodes."""
        batch, _, n_chans, n_times = x.shape
        ct, cs = self.conv_temporal, self.conv_spatial
        wt, pad = ct.weight[:, :, 0, :], ct.padding[1]  # (F1, 1, k)
        if _fft_pays(x, wt, pad):  # (batch, 1, n_chans, f) * (F1, 1, f): every map of every electrode row
            h = _fft_correlate(x, wt, pad)
        else:
            h = F.conv1d(x.reshape(batch * n_chans, 1, n_times), wt, None, padding=pad)
            h = h.reshape(batch, n_chans, ct.out_channels, -1).transpose(1, 2)
        if ct.bias is not None:
            h = h + ct.bias[:, None, None]
        h = self.bnorm_temporal(h)
        ws = cs.weight[:, 0, :, 0].reshape(ct.out_channels, -1, n_chans)  # (F1, D, n_chans), max-norm applied
        h = torch.matmul(ws, h).reshape(batch, cs.out_channels, 1, -1)  # map g*D + d, as the grouped conv's
        if cs.bias is not None:
            h = h + cs.bias[:, None, None]
        return self.bnorm_1(h)


#: Kernels at least this long along time run through the FFT in `conv1d_long` (bench/step.json: EEGNet's 64-sample
#: first block, forward and input gradient, 2.5x faster than oneDNN's direct ``conv1d``; at 32 samples about equal).
FFT_MIN_KERNEL = 48


def _fft_length(n: int) -> int:
    """The smallest length >= n whose only prime factors are 2, 3 and 5 (the FFT's fast sizes)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def conv1d_long(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=padding)`` (stride 1, no dilation, one group); through the FFT when the
    kernel has at least `FFT_MIN_KERNEL` taps.

    The FFT form is the same correlation: the padded transform length ``n >= n_times + padding`` keeps the circular
    wrap-around out of every output sample, and the result differs from the direct sum at float round-off (about
    1e-6 of the largest output, tests/models/test_models_layers.py). Gradients flow through ``rfft``/``irfft``."""
    if x.ndim != 3 or weight.ndim != 3 or weight.shape[1] != x.shape[1] or not _fft_pays(x, weight, padding):
        return F.conv1d(x, weight, bias, padding=padding)  # and its errors for shapes that do not fit
    y = _fft_correlate(x, weight, padding, _spectral_product)
    return y if bias is None else y + bias[:, None]


def _fft_pays(x: torch.Tensor, weight: torch.Tensor, padding: int) -> bool:
    """Whether `conv1d_long` takes the FFT: a long kernel, a padding the direct form allows, float32/64 throughout
    (half precision: no CPU FFT, and too coarse for a long sum anyway)."""
    k = weight.shape[-1]
    return (k >= FFT_MIN_KERNEL and 0 <= padding <= k - 1 and x.dtype in (torch.float32, torch.float64)
            and weight.dtype == x.dtype)


def _fft_correlate(x: torch.Tensor, weight: torch.Tensor, padding: int, product=torch.mul) -> torch.Tensor:
    """The correlation of ``x`` with ``weight`` along the last axis, zero-padded by ``padding`` on both sides,
    through the FFT: ``product`` of the two spectra (default: broadcast ``x * weight``), then back."""
    k = weight.shape[-1]
    n_out = x.shape[-1] + 2 * padding - k + 1
    n = _fft_length(x.shape[-1] + padding)
    spectrum = product(torch.fft.rfft(x, n=n), torch.fft.rfft(weight.flip(-1), n=n))
    return torch.fft.irfft(spectrum, n=n)[..., k - 1 - padding:k - 1 - padding + n_out]


def _spectral_product(xf: torch.Tensor, wf: torch.Tensor) -> torch.Tensor:
    """``einsum("bcf,ocf->bof", xf, wf)`` for complex spectra, as real arithmetic: torch multiplies complex batched
    matrices one frequency at a time (a copy per frequency), while one real ``bmm`` over the frequencies, with the
    weight as the block matrix ``[[Re, Im], [-Im, Re]]``, is the same sums (2.8x faster forward at EEGNet's size).
    Its columns interleave the real and imaginary part of each output map, so the product is a strided view of the
    ``(b, o, f)`` complex spectrum, passed to the inverse FFT without a transposing copy (at EEGNet's size the
    convolution's forward and input gradient about 1.4x faster than with the block layout ``[Re..., Im...]``; the
    same outputs bit for bit, input gradients within round-off). One input map (EEGNet's temporal conv in training) is a broadcast product."""
    b, c, f = xf.shape
    o = wf.shape[0]
    if c == 1:
        return xf * wf[:, 0]
    wr, wi = torch.view_as_real(wf).permute(3, 2, 1, 0).unbind(0)  # (f, c, o) each
    block = torch.cat([torch.stack([wr, wi], -1).reshape(f, c, 2 * o),  # Re x -> [Re y_0, Im y_0, Re y_1, ...]
                       torch.stack([-wi, wr], -1).reshape(f, c, 2 * o)], 1)  # Im x -> the same columns
    xr = torch.view_as_real(xf).permute(2, 0, 3, 1).reshape(f, b, 2 * c)  # (f, b, [Re x, Im x])
    y = torch.bmm(xr, block).reshape(f, b, o, 2).permute(1, 2, 0, 3)  # (b, o, f, [Re, Im]), a view
    return torch.view_as_complex(y)


#: The layers of EEGNet's first block, in order, that `FusedEEGNet` fuses.
FUSED_BLOCK = ("conv_temporal", "bnorm_temporal", "conv_spatial", "bnorm_1")


def _first_block(net) -> int | None:
    """Position of `FUSED_BLOCK` among ``net``'s modules when they stand in that order with shapes that fuse."""
    names = [name for name, _ in net.named_children()]
    at = names.index(FUSED_BLOCK[0]) if FUSED_BLOCK[0] in names else None
    if at is None or tuple(names[at:at + len(FUSED_BLOCK)]) != FUSED_BLOCK:
        return None
    ct, bt, cs, b1 = (getattr(net, n) for n in FUSED_BLOCK)
    fusable = (type(ct) in (nn.Conv2d, Conv2dAlongTime) and ct.in_channels == 1 and ct.kernel_size[0] == 1
               and ct.stride == (1, 1) and ct.dilation == (1, 1) and ct.padding_mode == "zeros"
               and not isinstance(ct.padding, str) and ct.padding[0] == 0 and ct.groups == 1
               and isinstance(bt, nn.BatchNorm2d) and isinstance(b1, nn.BatchNorm2d)
               and bt.track_running_stats and b1.track_running_stats
               and isinstance(cs, nn.Conv2d) and cs.kernel_size[1] == 1 and cs.stride == (1, 1)
               and cs.padding in ((0, 0), "valid") and cs.dilation == (1, 1) and cs.groups == ct.out_channels
               and cs.in_channels == ct.out_channels)
    return at if fusable else None


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm in eval mode as ``x * scale + shift``."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _fused_first_block(net) -> tuple[torch.Tensor, torch.Tensor]:
    """EEGNet's first block as one ``conv1d`` kernel ``(F2, n_chans, k)`` and bias ``(F2,)``."""
    wt = net.conv_temporal.weight[:, 0, 0, :]  # (F1, k)
    ws = net.conv_spatial.weight[:, 0, :, 0]  # (F2, n_chans); its parametrization (max-norm) applied
    s_t, b_t = _bn_affine(net.bnorm_temporal)
    s_1, b_1 = _bn_affine(net.bnorm_1)
    group = torch.arange(ws.shape[0], device=ws.device) // (ws.shape[0] // wt.shape[0])  # F1 of each F2 map
    bias_t = b_t if net.conv_temporal.bias is None else b_t + s_t * net.conv_temporal.bias
    weight = (s_1 * s_t[group])[:, None, None] * ws[:, :, None] * wt[group][:, None, :]
    spatial_bias = 0 if net.conv_spatial.bias is None else net.conv_spatial.bias
    bias = s_1 * (ws.sum(1) * bias_t[group] + spatial_bias) + b_1
    return weight, bias


class _FoldedBatchNorm:
    """Mixin for braindecode's Deep4Net and ShallowFBCSPNet (flat ``nn.Sequential`` networks). In eval mode:

    - a BatchNorm that directly follows a 1-D-form convolution is folded into that convolution's weight and bias
      (with running statistics BatchNorm is ``x * scale + shift`` per feature map);
    - an ELU directly followed by max-pooling runs after the pooling instead (Deep4Net's blocks): ELU (alpha >= 0)
      never decreases, so the maximum of the activations is the activation of the maximum, the same float, on a
      third of the samples. Its input gradient differs only where two samples of one window round to the same
      activation (a near-tie, routed to the larger input instead of the first).

    Train mode, and BatchNorm without running statistics, run module by module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        modules = list(self)
        i = 0
        while i < len(modules):
            module, after = modules[i], modules[i + 1] if i + 1 < len(modules) else None
            if (hasattr(module, "forward_bn") and type(after) is nn.BatchNorm2d and not after.training
                    and after.track_running_stats and after.running_var is not None):
                x = module.forward_bn(x, after)
                i += 2
            elif Square is not None and type(module) is Square and _square_pool_fuses(after, x):
                kernel, stride = _pair(after.kernel_size)[0], _pair(after.stride or after.kernel_size)[0]
                x = _SquareAvgPool.apply(x.squeeze(-1), kernel, stride).unsqueeze(-1)
                i += 2
            elif (type(module) in (nn.ELU, ExpELU) and module.alpha >= 0
                  and isinstance(after, (nn.MaxPool1d, nn.MaxPool2d)) and not after.return_indices):
                x = module(after(x))
                i += 2
            else:
                x = module(x)
                i += 1
        return x


class FoldedDeep4Net(_FoldedBatchNorm, Deep4Net if Deep4Net is not None else nn.Sequential):
    """braindecode's Deep4Net with each eval-mode BatchNorm folded into the convolution before it."""


class FoldedShallowFBCSPNet(_FoldedBatchNorm, ShallowFBCSPNet if ShallowFBCSPNet is not None else nn.Sequential):
    """braindecode's ShallowFBCSPNet with its eval-mode BatchNorm folded into the merged first convolution."""


#: Exact class -> its faster subclass. Subclasses of these (another library's variants) are left alone.
SWITCHES = {nn.Conv2d: Conv2dAlongTime, nn.MaxPool2d: MaxPool2dAlongTime, nn.AvgPool2d: AvgPool2dAlongTime,
            nn.ELU: ExpELU}
if CombinedConv is not None:
    SWITCHES[CombinedConv] = Conv1dCombinedConv
if EEGNet is not None:
    SWITCHES[EEGNet] = FusedEEGNet
if Deep4Net is not None:
    SWITCHES[Deep4Net] = FoldedDeep4Net
if ShallowFBCSPNet is not None:
    SWITCHES[ShallowFBCSPNet] = FoldedShallowFBCSPNet


def fast_layers(net: nn.Module) -> nn.Module:
    """Switch the layers of ``net`` that have a faster form (`SWITCHES`) in place; return ``net``.

    Switched are: a ``Conv2d`` with a ``(k, 1)`` kernel (k > 1) and a pooling layer with a ``(k, 1)`` window (their
    2-D op runs along the height axis), every ``CombinedConv``, braindecode's ``EEGNet`` itself (its first block
    fused in eval mode, its temporal conv through the FFT in training; its own layers, whose kernels run along the
    last axis, stay), ``Deep4Net`` and ``ShallowFBCSPNet`` themselves (eval-mode BatchNorm folded into the
    convolution before it), and every ``nn.ELU`` (`ExpELU`, eval mode). In eval mode the fused and folded
    modules' own forward hooks do not run. The forms check the input's shape at every call and fall back to
    braindecode's op for anything else."""
    for module in net.modules():
        new = SWITCHES.get(type(module))
        whole = new in (Conv1dCombinedConv, FusedEEGNet, FoldedDeep4Net, FoldedShallowFBCSPNet, ExpELU)
        if whole or (new is not None and _pair(module.kernel_size)[1] == 1 and _pair(module.kernel_size)[0] > 1):
            module.__class__ = new
    return net
