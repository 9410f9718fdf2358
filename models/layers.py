"""Faster forms of braindecode's layers for evaluation and attacks (Deep4Net, ShallowFBCSPNet); same numbers.

braindecode's Deep4Net and ShallowFBCSPNet keep time on the *height* axis of a ``(batch, features, time, 1)``
tensor: their convolutions have ``(k, 1)`` kernels and their pooling ``(k, 1)`` windows, and the first layer
(``CombinedConv``) merges the temporal and spatial filters into one ``conv2d`` with one input channel whose kernel
spans every electrode. oneDNN (mkldnn) runs these shapes slowly on CPU; the same operations written along the last
axis (``conv1d``, ``max_pool1d``, ``avg_pool1d``) are the same sums and maxima of the same terms and run several times
faster (per layer and per attack step, wall and CPU time: ``python bench/bench_step.py`` -> ``bench/step.json``).

`fast_layers` switches, in place, the layers of a network to these subclasses (same parameters, same state dict):

- `Conv2dAlongTime`, `MaxPool2dAlongTime`, `AvgPool2dAlongTime`: the 1-D form in eval mode (prediction, every
  attack, crafting for adversarial training); in train mode braindecode's own 2-D op, so training is bit for bit
  braindecode's. The 1-D forms are the same kernels on a transposed layout; their outputs matched the 2-D ones
  exactly on the bundled shapes (tests/models/test_models_layers.py holds them to float round-off).
- `Conv1dCombinedConv`: the merged first layer as a ``conv1d`` with the electrodes as input channels, only where
  its input gradient is asked for through frozen weights (white-box attacks, crafting on a substitute). That sum
  runs in another order (float round-off), so training and clean predictions keep braindecode's ``conv2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

try:
    from braindecode.modules import CombinedConv
except ImportError:  # older braindecode: no merged layer, nothing to switch
    CombinedConv = None


def _along_time(x: torch.Tensor, *pairs) -> bool:
    """A ``(batch, features, time, 1)`` input and a layer that is 1 wide, strides 1 and pads 0 along the last axis."""
    return x.ndim == 4 and x.shape[-1] == 1 and all(_pair(p)[1] == w for p, w in pairs)


class Conv2dAlongTime(nn.Conv2d):
    """``nn.Conv2d`` with a ``(k, 1)`` kernel, run as ``conv1d`` in eval mode (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training or isinstance(self.padding, str) or self.padding_mode != "zeros"
                or not _along_time(x, (self.kernel_size, 1), (self.stride, 1), (self.padding, 0), (self.dilation, 1))):
            return super().forward(x)
        return F.conv1d(x[..., 0], self.weight[..., 0], self.bias, self.stride[0], self.padding[0], self.dilation[0],
                        self.groups).unsqueeze(-1)


class MaxPool2dAlongTime(nn.MaxPool2d):
    """``nn.MaxPool2d`` with a ``(k, 1)`` window, run as ``max_pool1d`` in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride if self.stride is not None else self.kernel_size
        if (self.training or self.return_indices
                or not _along_time(x, (self.kernel_size, 1), (stride, 1), (self.padding, 0), (self.dilation, 1))):
            return super().forward(x)
        return F.max_pool1d(x[..., 0], _pair(self.kernel_size)[0], _pair(stride)[0], _pair(self.padding)[0],
                            _pair(self.dilation)[0], self.ceil_mode).unsqueeze(-1)


class AvgPool2dAlongTime(nn.AvgPool2d):
    """``nn.AvgPool2d`` with a ``(k, 1)`` window, run as ``avg_pool1d`` in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.stride if self.stride is not None else self.kernel_size
        if (self.training or self.divisor_override is not None
                or not _along_time(x, (self.kernel_size, 1), (stride, 1), (self.padding, 0))):
            return super().forward(x)
        return F.avg_pool1d(x[..., 0], _pair(self.kernel_size)[0], _pair(stride)[0], _pair(self.padding)[0],
                            self.ceil_mode, self.count_include_pad).unsqueeze(-1)


class Conv1dCombinedConv(CombinedConv if CombinedConv is not None else nn.Module):
    """braindecode's ``CombinedConv`` with its input gradient computed through ``conv1d`` (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.conv_time.weight
        if not (torch.is_grad_enabled() and x.requires_grad and not weight.requires_grad
                and not self.conv_spat.weight.requires_grad and x.ndim == 4 and x.shape[1] == 1
                and x.shape[3] == self.conv_spat.kernel_size[1]):
            return super().forward(x)
        spat = self.conv_spat.weight[:, :, 0, :]  # (n_spat, n_time, n_chans)
        merged = torch.einsum("tk,stc->sck", weight[:, 0, :, 0], spat)  # (n_spat, n_chans, kernel)
        bias = None
        if self.bias_time:
            bias = spat.sum(-1) @ self.conv_time.bias
        if self.bias_spat:
            bias = self.conv_spat.bias if bias is None else bias + self.conv_spat.bias
        return F.conv1d(x[:, 0].transpose(1, 2), merged, bias).unsqueeze(-1)


#: Exact class -> its faster subclass. Subclasses of these (another library's variants) are left alone.
SWITCHES = {nn.Conv2d: Conv2dAlongTime, nn.MaxPool2d: MaxPool2dAlongTime, nn.AvgPool2d: AvgPool2dAlongTime}
if CombinedConv is not None:
    SWITCHES[CombinedConv] = Conv1dCombinedConv


def fast_layers(net: nn.Module) -> nn.Module:
    """Switch the layers of ``net`` that have a faster form (`SWITCHES`) in place; return ``net``.

    Only layers whose 2-D op runs along the height axis are switched: a ``Conv2d`` with a ``(k, 1)`` kernel (k > 1),
    a pooling layer with a ``(k, 1)`` window, every ``CombinedConv`` (EEGNet, whose kernels run along the last
    axis, keeps all its layers). The forms check the input's shape at every call and fall back to the 2-D op
    for anything else."""
    for module in net.modules():
        new = SWITCHES.get(type(module))
        if new is Conv1dCombinedConv or (new is not None and _pair(module.kernel_size)[1] == 1
                                         and _pair(module.kernel_size)[0] > 1):
            module.__class__ = new
    return net
