"""Query attacks (SimBA, RayS, Square, HopSkipJump): per-trial query budgets and the per-trial query contract.

Contract: ``n_queries[i]`` at a budget is the number of oracle queries spent on trial i up to and including the
first query whose label differs from the oracle's clean label within that budget, or all queries spent on it
if there was none.
"""

import numpy as np
import pytest
import torch

from eegrobust.attacks import (
    HopSkipJump,
    QueryBudgetExceeded,
    QueryOracle,
    RayS,
    SimBA,
    SquareAttack,
)
from eegrobust.data import ConfigError

QUERY_ATTACKS = {"simba": (SimBA, 60), "rays": (RayS, 120)}
ALL_QUERY_ATTACKS = {**QUERY_ATTACKS, "square": (SquareAttack, 50), "hopskipjump": (HopSkipJump, 100)}


def predict(model, X):
    with torch.no_grad():
        return model.eval()(torch.from_numpy(np.asarray(X, dtype=np.float32))).argmax(1).numpy()


class MeanSign(torch.nn.Module):
    """Label 1 where the trial's mean is positive: a victim whose decisions the tests can predict."""

    def forward(self, S):
        m = S.mean((1, 2))
        return torch.stack([-m, m], 1)


@pytest.fixture
def oracle_and_S():
    S = torch.full((6, 2, 8), -1.0)
    S[3:] = 1.0  # trials 0-2: label 0, trials 3-5: label 1
    return QueryOracle(MeanSign()), S


# ------------------------------------------------------------------------------------------ the oracle's books
def test_oracle_books_per_trial(oracle_and_S):
    oracle, S = oracle_and_S
    oracle.track(S)
    np.testing.assert_array_equal(oracle.trial_queries, 1)
    oracle(S[[1, 1, 3]] + 3.0, torch.tensor([1, 1, 3]))  # a trial may appear twice in one batch
    np.testing.assert_array_equal(oracle.trial_queries, [1, 3, 1, 2, 1, 1])
    assert oracle.queries_at(3.0)[1] == 2  # the first of the two rows already flipped trial 1
    oracle(S[:4])  # unattributable (4 rows, 6 trials, no rows): every trial pays all 4, none is credited
    np.testing.assert_array_equal(oracle.trial_queries, [5, 7, 5, 6, 5, 5])
    assert oracle.n_queries == 6 + 3 + 4
    np.testing.assert_array_equal(oracle.fooled(), [False, True, False, False, False, False])


def test_oracle_queries_at_first_adversarial_within_budget(oracle_and_S):
    oracle, S = oracle_and_S
    oracle.track(S)
    row = torch.tensor([0])
    oracle(S[:1] + 0.5, row)  # query 2: mean -0.5, the clean label
    oracle(S[:1] + 1.5, row)  # query 3: fooled at distance 1.5
    oracle(S[:1] + 2.0, row)  # query 4: fooled, farther: not an improvement
    oracle(S[:1] + 1.2, row)  # query 5: fooled at distance 1.2
    oracle(S[:1] + 0.9, row)  # query 6: the clean label
    assert oracle.queries_at(1.5)[0] == 3
    assert oracle.queries_at(1.3)[0] == 5
    assert oracle.queries_at(1.0)[0] == 6  # never fooled within 1.0: all it spent
    assert oracle.best_dist[0] == pytest.approx(1.2)
    np.testing.assert_allclose(oracle.best[0].numpy(), (S[0] + 1.2).numpy())
    np.testing.assert_array_equal(oracle.queries_at(1.5)[1:], 1)  # the other trials: only their clean query


def test_oracle_per_trial_budget(oracle_and_S):
    oracle, S = oracle_and_S
    oracle.track(S, max_per_trial=3)
    oracle(S[:2], torch.tensor([0, 0]))
    with pytest.raises(QueryBudgetExceeded, match="3 per trial"):
        oracle(S[:1], torch.tensor([0]))  # refused, and not booked
    assert oracle.trial_queries[0] == 3
    oracle(S[1:2], torch.tensor([1]))


# ------------------------------------------------------------------------------------------------ attacks
@pytest.mark.parametrize("name", sorted(ALL_QUERY_ATTACKS))
def test_queries_within_budget_and_contract(name, victim, attack_eval):
    cls, max_q = ALL_QUERY_ATTACKS[name]
    X, y = attack_eval.X, attack_eval.y
    attack = cls(max_queries=max_q)
    outputs = attack(victim, X, y, epsilons=(0.0, 0.05, 0.3, 1.0), random_state=0)
    clean = predict(victim, X)
    ok = clean == y  # the template reports misclassified trials as not fooled when they flip to the true label
    if attack.minimal:  # epsilon 0 is never reached: all the queries each trial spent
        spent = outputs[0].n_queries
        assert np.all(spent >= 1) and np.all(spent <= max_q)
    else:  # nothing to search at epsilon 0
        np.testing.assert_array_equal(outputs[0].n_queries, 0)
    previous = None
    for out in outputs[1:]:
        assert out.n_queries.shape == (len(X),)
        assert np.all(out.n_queries >= 1) and np.all(out.n_queries <= max_q)
        fooled = (predict(victim, out.X_adv) != clean) & ok
        if attack.minimal:  # one run serves every budget: a larger budget is reached no later
            np.testing.assert_array_equal(out.n_queries[~fooled & ok], spent[~fooled & ok])
            assert np.all(out.n_queries[fooled] <= spent[fooled])
            assert np.all(fooled[ok & (out.n_queries < spent)])  # reached before the end: fooled in the output
            if previous is not None:
                assert np.all(out.n_queries <= previous)
            previous = out.n_queries
        else:  # the search stops at the first query that flips the label
            assert np.all(out.n_queries[~fooled] >= 2)
            if name == "square":  # Square only stops at a flip: a trial it did not fool spent the whole budget
                np.testing.assert_array_equal(out.n_queries[~fooled & ok], max_q)
                assert np.all(fooled[ok & (out.n_queries < max_q)])
    if name != "square":  # Square does not fool the synthetic EEGNet within 50 queries
        assert any((predict(victim, out.X_adv) != clean).any() for out in outputs)


@pytest.mark.parametrize("name", sorted(QUERY_ATTACKS))
def test_query_counts_do_not_depend_on_the_budget(name, trained_eegnet, attack_eval):
    """Each trial's search is its own (seeded per trial): a trial fooled at q queries under a budget of 120 is
    fooled at exactly q queries under any budget >= q. This pins down that q counts up to the flipping query."""
    cls, _ = QUERY_ATTACKS[name]
    X, y = attack_eval.X, attack_eval.y
    big, small = (cls(max_queries=m)(trained_eegnet, X, y, epsilons=(0.5,), random_state=3)[0] for m in (120, 40))
    clean = predict(trained_eegnet, X)
    fooled_big = predict(trained_eegnet, big.X_adv) != clean
    fooled_small = predict(trained_eegnet, small.X_adv) != clean
    early = fooled_big & (big.n_queries <= 40)
    assert early.any()
    assert np.all(fooled_small[early])
    np.testing.assert_array_equal(small.n_queries[early], big.n_queries[early])
    assert np.all(small.n_queries <= 40)
    if name == "rays":  # minimal-norm: a trial not fooled within the budget spent all of it
        np.testing.assert_array_equal(small.n_queries[~fooled_small], 40)


@pytest.mark.parametrize("name", sorted(QUERY_ATTACKS))
def test_seeded(name, trained_toy, attack_eval):
    cls, _ = QUERY_ATTACKS[name]
    X, y = attack_eval.X, attack_eval.y
    a, b, c = (cls(max_queries=40)(trained_toy, X, y, epsilons=(0.1, 0.5), random_state=s) for s in (7, 7, 8))
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.X_adv, q.X_adv)
        np.testing.assert_array_equal(p.n_queries, q.n_queries)
    assert any(not np.array_equal(p.X_adv, r.X_adv) for p, r in zip(a, c))


@pytest.mark.parametrize("cls", [SimBA, RayS])
@pytest.mark.parametrize("value", [1, 0, -3])
def test_max_queries_too_small(cls, value):
    with pytest.raises(ConfigError, match=rf"max_queries must be an integer >= 2 .* got {value}\.") as err:
        cls(max_queries=value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw", [{"freq_ratio": 0.0}, {"freq_ratio": 1.5}, {"rel_stepsize": -1.0}, {"band": 0}])
def test_simba_bad_parameters(kw):
    (key, value), = kw.items()
    with pytest.raises(ConfigError, match=rf"SimBA {key} .* got {value!r}"):
        SimBA(**kw)


def test_rays_bad_rtol():
    with pytest.raises(ConfigError, match="RayS rtol"):
        RayS(rtol=1.0)
