"""Black-box attacks: the query-counting oracle, query budgets, and the Jacobian substitute."""

import numpy as np
import pytest
import torch
from torch import nn

from eegrobust.attacks import (
    L2PGD,
    BudgetSpace,
    HopSkipJump,
    JacobianSubstitute,
    QueryBudgetExceeded,
    QueryOracle,
    SquareAttack,
    channel_scale,
)
from eegrobust.data import ConfigError, epochs_to_data, make_synthetic_epochs


class CountingModel(nn.Module):
    """Wrap a victim and count every trial it is asked to classify (what a real black box would log)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def forward(self, X):
        self.rows += len(X)
        return self.model(X)


def n_check_rows(n_trials):
    """Rows of the template's own checks: two trials twice (stochastic models), the rest once (NaN logits)."""
    return n_trials + 2


# -------------------------------------------------------------------------------------------- QueryOracle
def _oracle(model, X, **kw):
    scale = channel_scale(X)
    S = torch.from_numpy(X / scale[None, :, None].astype(np.float32))
    return QueryOracle(BudgetSpace(model.eval(), scale), **kw), S


def test_oracle_counts_rows_and_enforces_budget(trained_toy, attack_eval):
    oracle, S = _oracle(trained_toy, attack_eval.X, max_queries=10)
    oracle(S[:6])
    assert oracle.n_queries == 6
    oracle(S[:4])
    assert oracle.n_queries == 10  # exactly at the budget is allowed
    with pytest.raises(QueryBudgetExceeded, match="10"):
        oracle(S[:1])
    assert issubclass(QueryBudgetExceeded, RuntimeError)


def test_oracle_labels_are_one_hot(trained_toy, attack_eval):
    oracle, S = _oracle(trained_toy, attack_eval.X)
    out = oracle(S[:8])
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out.sum(1), torch.ones(8))
    pred = trained_toy(torch.from_numpy(attack_eval.X[:8])).argmax(1)
    torch.testing.assert_close(oracle.labels(S[:8]), pred)
    assert oracle.n_queries == 16


def test_oracle_scores_are_probabilities(trained_toy, attack_eval):
    oracle, S = _oracle(trained_toy, attack_eval.X, scores=True)
    out = oracle(S[:8])
    assert torch.all(out >= 0)
    torch.testing.assert_close(out.sum(1), torch.ones(8))
    assert not torch.all((out == 0) | (out == 1))  # scores, not labels


# ------------------------------------------------------------------------------------------ query budgets
@pytest.mark.parametrize("max_queries", [10, 50])
def test_square_within_query_budget(max_queries, victim, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    counted = CountingModel(victim)
    epsilons = (0.0, 0.3, 1.0)
    outputs = SquareAttack(max_queries=max_queries)(counted, X, y, epsilons=epsilons)
    for out in outputs:
        assert out.n_queries.shape == (len(X),)
        assert np.all(out.n_queries <= max_queries)
    np.testing.assert_array_equal(outputs[0].n_queries, 0)  # epsilon 0: nothing to search
    assert np.all(outputs[1].n_queries >= 2)  # the clean trial and the initial stripes
    # every query the victim answered is reported, and none more
    assert sum(out.n_queries.sum() for out in outputs) == counted.rows - n_check_rows(len(X))


def test_square_stops_when_label_flips(trained_toy, attack_eval, acc):
    """A trial fooled early stops spending queries; one never fooled spends the whole budget."""
    X, y = attack_eval.X, attack_eval.y
    (out,) = SquareAttack(max_queries=200, p_init=0.05)(trained_toy, X, y, epsilons=(1.0,))  # fools some
    fooled = trained_toy(torch.from_numpy(out.X_adv)).argmax(1).numpy() != trained_toy(
        torch.from_numpy(X)).argmax(1).numpy()
    assert fooled.any() and (~fooled).any()
    assert np.all(out.n_queries[~fooled] == 200)
    assert np.all(out.n_queries[fooled] < 200)


@pytest.mark.parametrize("chunk", [32, 3], ids=["one-run", "chunked"])
def test_hopskipjump_within_query_budget(victim, attack_eval, chunk):
    X, y = attack_eval.X, attack_eval.y
    assert len(X) > 3  # "chunked" splits the trials into several foolbox runs
    counted = CountingModel(victim)
    outputs = HopSkipJump(max_queries=300, chunk=chunk)(counted, X, y, epsilons=(0.0, 0.5, 1.0))
    for out in outputs:
        assert out.n_queries.shape == (len(X),)
        assert np.all(out.n_queries <= 300)
        assert np.all(out.n_queries > 0)  # a minimal attack runs once, for every epsilon
    # the template's own check rows and one final prediction per trial are not oracle queries
    oracle_rows = counted.rows - n_check_rows(len(X)) - len(X)
    assert outputs[0].n_queries.sum() == pytest.approx(oracle_rows)


class _OptimisticHopSkipJump(HopSkipJump):
    """Plans far more iterations than the budget allows, forcing HopSkipJump's retry path."""

    def _steps(self):
        return 20


def test_hopskipjump_retry_counts_every_query(trained_toy, attack_eval):
    X, y = attack_eval.X, attack_eval.y
    counted = CountingModel(trained_toy)
    spent, out = _OptimisticHopSkipJump(max_queries=300)(counted, X, y, epsilons=(0.0, 0.5))
    oracle_rows = counted.rows - n_check_rows(len(X)) - len(X)
    assert spent.n_queries.sum() == pytest.approx(oracle_rows)  # epsilon 0 is never reached: all queries spent
    assert np.all(out.n_queries <= spent.n_queries)  # the queries until the first adversarial within 0.5
    assert np.all(spent.n_queries <= 300)


# ------------------------------------------------------------------------------------ Jacobian substitute
def test_substitute_fit_counts_training_queries(fitted_substitute, jacobian_seed):
    assert fitted_substitute.training_queries_ == 2 * jacobian_seed.n_trials  # seed labels + one round
    assert isinstance(fitted_substitute.substitute_, nn.Module)
    assert not fitted_substitute.substitute_.training
    assert fitted_substitute.substitute_.arch == "toy"


def test_substitute_fit_restores_victim(trained_toy, jacobian_seed, attack_eval):
    from eegrobust.models import TrainConfig

    victim = trained_toy.train()
    weights = {k: v.clone() for k, v in victim.state_dict().items()}
    attack = JacobianSubstitute(seed=jacobian_seed.subset(np.arange(10)), arch="toy", rounds=2,
                                train_config=TrainConfig(max_epochs=1, val_fraction=0.0, show_progress=False))
    attack.fit(victim, channel_scale(attack_eval.X))
    assert attack.training_queries_ == 10 + 10 + 20  # the set doubles each round
    assert victim.training
    assert all(p.requires_grad for p in victim.parameters())
    for k, v in victim.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)


def test_substitute_agrees_with_victim(fitted_substitute, trained_toy, attack_eval):
    X = torch.from_numpy(attack_eval.X)
    agree = (fitted_substitute.substitute_(X).argmax(1) == trained_toy(X).argmax(1)).float().mean()
    assert agree > 0.8


def test_substitute_attack_transfers(fitted_substitute, trained_toy, attack_eval, acc, jacobian_seed):
    X, y = attack_eval.X, attack_eval.y
    counted = CountingModel(trained_toy)
    outputs = fitted_substitute(counted, X, y, epsilons=(0.0, 1.0))
    assert acc(trained_toy, outputs[0].X_adv, y) == acc(trained_toy, X, y)
    assert acc(trained_toy, outputs[1].X_adv, y) < 0.3
    np.testing.assert_array_equal(outputs[1].n_queries, 1.0)  # one label query per trial
    assert counted.rows - n_check_rows(len(X)) == len(X)
    assert outputs[1].info == {"training_queries": 2 * jacobian_seed.n_trials}


def test_substitute_before_fit_raises(trained_toy, attack_eval, jacobian_seed):
    attack = JacobianSubstitute(seed=jacobian_seed, arch="toy", rounds=1)
    with pytest.raises(ConfigError, match="fit"):
        attack(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.1,))


def test_substitute_seed_must_be_eegdata(attack_eval):
    with pytest.raises(TypeError, match="ndarray"):
        JacobianSubstitute(seed=attack_eval.X)


def test_substitute_repr_and_name(fitted_substitute, jacobian_seed):
    text = repr(fitted_substitute)
    assert text.startswith("JacobianSubstitute(")
    for part in ("arch='toy'", "rounds=1", f"n_seed={jacobian_seed.n_trials}", "base=LinfPGD(steps=40"):
        assert part in text
    assert fitted_substitute.name == "substitute_linf_pgd"
    assert fitted_substitute.threat_model == "black_box"


def test_substitute_norm_follows_base(jacobian_seed):
    assert JacobianSubstitute(seed=jacobian_seed, base=L2PGD()).norm == "l2"


# ------------------------------------------------------------------ ensemble and agreement substitutes
@pytest.mark.parametrize("arch", ["ensemble", "agreement"])
def test_substitute_from_several_architectures(arch, trained_toy, jacobian_seed, attack_eval, acc):
    from eegrobust.attacks import SubstituteEnsemble
    from tests.attacks.conftest import _train_config, one_torch_thread

    attack = JacobianSubstitute(seed=jacobian_seed, arch=arch, members=("toy", "eegnet"), rounds=1,
                                train_config=_train_config(max_epochs=3))
    with one_torch_thread():
        attack.fit(trained_toy, channel_scale(attack_eval.X))
    n_held = jacobian_seed.n_trials // 5 if arch == "agreement" else 0
    n_train = jacobian_seed.n_trials - n_held
    # seed labels, one augmentation round, and (agreement) the held-out trials' labels: each queried once
    assert attack.training_queries_ == 2 * n_train + n_held
    if arch == "ensemble":
        assert isinstance(attack.substitute_, SubstituteEnsemble)
        assert attack.substitute_.arch == "ensemble(toy,eegnet)" and attack.members_ == {}
        X = torch.from_numpy(attack_eval.X[:5])
        logp = attack.substitute_(X)
        members = [torch.log_softmax(m(X), 1) for m in attack.substitute_.members]
        assert torch.allclose(logp, (members[0] + members[1]) / 2, atol=1e-5)
    else:
        assert set(attack.members_) == {"toy", "eegnet"}
        assert all(0.0 <= v <= 1.0 for v in attack.members_.values())
        best = max(attack.members_.values())
        assert attack.members_[attack.substitute_.arch] == best
    outputs = attack(trained_toy, attack_eval.X, attack_eval.y, epsilons=(0.0, 1.0))
    assert acc(trained_toy, outputs[1].X_adv, attack_eval.y) <= acc(trained_toy, outputs[0].X_adv, attack_eval.y)
    assert "members=('toy', 'eegnet')" in repr(attack)


@pytest.mark.parametrize("kw, match", [
    ({"arch": "ensemble", "members": ("toy", "toy")}, r"members must be distinct architecture names, got \('toy', 'toy'\)"),
    ({"arch": "ensemble", "members": "toy"}, r"members must be distinct architecture names, got 'toy'"),
    ({"arch": "ensemble", "members": ("toy", "eegnett")}, r"JacobianSubstitute member must be one of .*'eegnet'"),
])
def test_substitute_members_checked(kw, match, jacobian_seed):
    with pytest.raises(ConfigError, match=match):
        JacobianSubstitute(seed=jacobian_seed, **kw)


def test_substitute_members_too_long_for_the_trials(trained_toy, attack_eval):
    short = epochs_to_data(make_synthetic_epochs(n_trials=10, n_times=16, random_state=2))
    attack = JacobianSubstitute(seed=short, arch="ensemble", members=("deep4",), rounds=1)
    with pytest.raises(ConfigError, match=r"none of the members \('deep4',\) accepts trials of 16 samples at 128 Hz"):
        attack.fit(trained_toy, channel_scale(short.X))
