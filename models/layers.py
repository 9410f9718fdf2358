"""Faster input gradients for braindecode's merged temporal-spatial convolution (Deep4Net, ShallowFBCSPNet).

braindecode's ``CombinedConv`` merges the temporal and spatial filters into one ``conv2d`` whose input has a single
channel and whose kernel spans every electrode. oneDNN (mkldnn) computes the *input* gradient of that convolution
slowly on CPU: in an attack step (frozen weights, gradient with respect to the EEG) it took several times the
forward pass on ShallowFBCSPNet. The same product written as a ``conv1d`` with the electrodes as input channels is the
same sum of the same terms, and its input gradient is several times faster (measured per attack step and
architecture, wall and CPU time, by ``python bench/bench_step.py`` -> ``bench/step.json``).

`fast_input_gradients` switches every ``CombinedConv`` of a network to `Conv1dCombinedConv`: same parameters, same
state dict, same outputs up to float round-off. The ``conv1d`` form is used only where it pays and changes nothing
else: an input that needs a gradient through frozen weights (white-box attacks, crafting on a substitute).
Training (weights need gradients) and prediction (no gradient) keep braindecode's own ``conv2d``, so trained
victims and clean predictions are bit for bit those of braindecode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

try:
    from braindecode.modules import CombinedConv
except ImportError:  # older braindecode: no merged layer, nothing to switch
    CombinedConv = None


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


def fast_input_gradients(net: nn.Module) -> nn.Module:
    """Switch every braindecode ``CombinedConv`` in ``net`` to `Conv1dCombinedConv` in place; return ``net``."""
    if CombinedConv is None:
        return net
    for module in net.modules():
        if type(module) is CombinedConv:
            module.__class__ = Conv1dCombinedConv
    return net
