"""Gradient attacks do not stand still where cross-entropy saturates.

A model whose logits are a million times too large (trained in volts, fed microvolts; or just overconfident) has a
softmax that is exactly one-hot in float32, so its cross-entropy gradient is exactly 0 and a sign-gradient attack
would leave the trial where it is and call it robust. The attacks then follow the logit margin there: scaling the
logits, which changes no decision, must not change what the attacks find.
"""

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import make_attack
from eegrobust.attacks.base import revive_gradient

from .conftest import FAST_PARAMS


def _accuracy(model, out, y):
    with torch.no_grad():
        return float((model(torch.from_numpy(out.X_adv)).argmax(1).numpy() == y).mean())


@pytest.mark.parametrize("name", ["fgsm", "linf_pgd", "apgd_ce", "band_pgd"])
def test_saturated_logits_are_attacked_like_plain_ones(trained_eegnet, attack_eval, name, scaled_logits):
    X, y = attack_eval.X, attack_eval.y
    big = scaled_logits(trained_eegnet, 1e6).eval()
    with torch.no_grad():
        z = big(torch.from_numpy(X))
    grad_x = torch.from_numpy(X).requires_grad_(True)
    gap = (z.max(1).values - z.min(1).values).min().item()
    assert gap > 200  # the premise: softmax is one-hot in float32 on every trial
    with torch.enable_grad():
        loss = nn.functional.cross_entropy(big(grad_x), torch.from_numpy(y), reduction="sum")
        (g,) = torch.autograd.grad(loss, grad_x)
    assert (g == 0).all()  # cross-entropy gives no direction at all
    kwargs = {"sfreq": 128.0} if name == "band_pgd" else {}
    params = {k: v for k, v in FAST_PARAMS.get(name, {}).items() if k != "sfreq"}
    plain = make_attack(name, **params)(trained_eegnet, X, y, epsilons=[0.5], random_state=0, **kwargs)[0]
    scaled = make_attack(name, **params)(big, X, y, epsilons=[0.5], random_state=0, **kwargs)[0]
    acc_plain, acc_scaled = _accuracy(trained_eegnet, plain, y), _accuracy(trained_eegnet, scaled, y)
    clean = float((trained_eegnet(torch.from_numpy(X)).argmax(1).numpy() == y).mean())
    assert acc_plain < clean - 0.2  # the attack works on the plain model ...
    assert acc_scaled <= acc_plain + 0.1  # ... and as well through saturated logits
    assert np.abs(scaled.X_adv - X).max() > 0


def test_revive_gradient_keeps_live_rows_bit_for_bit(trained_toy, attack_eval):
    x = torch.from_numpy(attack_eval.X[:6])
    y = torch.from_numpy(attack_eval.y[:6])
    grad = torch.randn_like(x)
    assert revive_gradient(trained_toy, x, y, grad) is grad  # nothing to revive: the same tensor
    grad[2] = 0
    out = revive_gradient(trained_toy, x, y, grad)
    assert torch.equal(out[[0, 1, 3, 4, 5]], grad[[0, 1, 3, 4, 5]])
    assert (out[2] != 0).any()
    with torch.enable_grad():
        xi = x[2:3].clone().requires_grad_(True)
        z = trained_toy(xi)
        (expected,) = torch.autograd.grad(z[0, 1 - y[2]] - z[0, y[2]], xi)
    torch.testing.assert_close(out[2], expected[0])
