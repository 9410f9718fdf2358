"""Gray-box transfer: adversarial trials crafted on a surrogate and sent to the victim."""

import numpy as np
import pytest
import torch

from eegrobust.attacks import FGSM, L2PGD, UFGSM, LinfPGD, TransferAttack, channel_scale


@pytest.mark.parametrize(("base", "min_drop"), [(LinfPGD(), 0.5), (L2PGD(), 0.5), (UFGSM(), 0.2)],
                         ids=["LinfPGD", "L2PGD", "UFGSM"])
def test_transfer_lowers_victim_accuracy(base, min_drop, trained_toy, surrogate_eegnet, attack_eval, acc,
                                         within_budget):
    """EEGNet surrogate, linear victim: iterative attacks transfer well, one-step UFGSM less (measured 0.97 to
    0.59 at epsilon=1)."""
    X, y = attack_eval.X, attack_eval.y
    attack = TransferAttack(surrogate=surrogate_eegnet, base=base, surrogate_name="eegnet")
    outputs = attack(trained_toy, X, y, epsilons=(1.0, 0.0))
    clean = acc(trained_toy, X, y)
    assert clean > 0.9
    np.testing.assert_array_equal(outputs[1].X_adv, X)
    assert acc(trained_toy, outputs[0].X_adv, y) < clean - min_drop
    for out in outputs:
        assert out.n_queries is None
        within_budget(attack, out, X, channel_scale(X))


def test_transfer_crafts_on_the_surrogate_only(trained_toy, surrogate_eegnet, attack_eval):
    """The victim only sees the template's checks (two trials twice, then the rest once for NaN logits): no
    gradients, no queries from _run."""
    X, y = attack_eval.X, attack_eval.y
    calls = []
    handle = trained_toy.register_forward_hook(lambda mod, inp, out: calls.append(len(inp[0])))
    try:
        TransferAttack(surrogate=surrogate_eegnet, base=LinfPGD())(trained_toy, X, y, epsilons=(0.5,))
    finally:
        handle.remove()
    assert calls == [2, 2, len(X) - 2]


def test_transfer_restores_surrogate_state(trained_toy, surrogate_eegnet, attack_eval):
    surrogate = surrogate_eegnet.train()
    TransferAttack(surrogate=surrogate, base=FGSM())(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.3,))
    assert surrogate.training
    assert all(p.requires_grad for p in surrogate.parameters())


def test_transfer_is_not_nested(trained_toy, surrogate_eegnet, attack_eval):
    """The attacker cannot see which trials fooled the victim: each epsilon is crafted afresh, so a larger
    epsilon perturbs every trial, not only those a smaller one missed."""
    X, y = attack_eval.X, attack_eval.y
    outputs = TransferAttack(surrogate=surrogate_eegnet, base=FGSM())(trained_toy, X, y, epsilons=(0.2, 0.4))
    for out in outputs:
        assert np.all(np.any(out.X_adv != X, axis=(1, 2)))


def test_transfer_describes_itself(surrogate_eegnet):
    attack = TransferAttack(surrogate=surrogate_eegnet, base=L2PGD(steps=5), surrogate_name="eegnet")
    assert attack.name == "transfer_l2_pgd"
    assert attack.norm == "l2"
    assert attack.threat_model == "gray_box"
    text = repr(attack)
    assert "L2PGD(steps=5" in text and "surrogate=eegnet" in text
    assert "surrogate=EEGDecoder" in repr(TransferAttack(surrogate=surrogate_eegnet, base=FGSM()))


def test_transfer_surrogate_must_be_module():
    with pytest.raises(TypeError, match="surrogate must be a torch.nn.Module, got str"):
        TransferAttack(surrogate="eegnet", base=FGSM())


def test_transfer_same_random_state_same_result(trained_toy, surrogate_eegnet, attack_eval, global_random_seed):
    a, b = (TransferAttack(surrogate=surrogate_eegnet, base=LinfPGD(steps=10))(
        trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.3,), random_state=global_random_seed) for _ in range(2))
    np.testing.assert_array_equal(a[0].X_adv, b[0].X_adv)
    assert torch.is_grad_enabled()


def test_transfer_crafts_each_trial_once(trained_toy, surrogate_eegnet, attack_eval):
    """Reused for a second victim, a TransferAttack crafts only trials it has not seen at that epsilon, and hands
    back the very same adversarial trials for those it has."""
    X, y = attack_eval.X, attack_eval.y
    base = LinfPGD(steps=5)
    crafted = []
    run = base._craft
    base._craft = lambda target, S, labels, **kw: crafted.append(len(S)) or run(target, S, labels, **kw)
    attack = TransferAttack(surrogate=surrogate_eegnet, base=base)
    first = attack(trained_toy, X[:20], y[:20], epsilons=(0.3,), scale=channel_scale(X))
    second = attack(trained_toy, X[10:30], y[10:30], epsilons=(0.3, 0.5), scale=channel_scale(X))
    assert crafted == [20, 10, 20]  # 0.3: 20 new, then 10 new; 0.5: all 20 new
    np.testing.assert_array_equal(second[0].X_adv[:10], first[0].X_adv[10:])
