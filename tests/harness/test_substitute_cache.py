"""Black-box Jacobian substitutes cached next to the victims (`harness.cache.fit_substitute`): a rerun queries and
trains nothing, and gives the same substitute, queries and adversarial trials."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from eegrobust.attacks import JacobianSubstitute, channel_scale
from eegrobust.harness.cache import fit_substitute, substitute_key
from eegrobust.harness.config import SuiteConfig
from eegrobust.models import TrainConfig

FAST = TrainConfig(max_epochs=2, patience=None, val_fraction=0.0, show_progress=False)


def _attack(seed_data, arch="toy", **kw):
    return JacobianSubstitute(seed=seed_data, arch=arch, rounds=1, train_config=FAST, **kw)


def _no_fit(self, victim, scale):
    raise AssertionError("the cached substitute was trained again")


@pytest.fixture
def setup(split, toy_victims, one_torch_thread):
    _, test = split
    return toy_victims["toy"].eval(), test.subset(np.arange(20)), test.subset(np.arange(20, 50)), \
        channel_scale(test.X)


@pytest.mark.parametrize("arch", ["toy", "ensemble", "agreement"])
def test_a_cached_substitute_is_read_back_not_trained(arch, setup, tmp_path, monkeypatch):
    victim, seed, evaluation, scale = setup
    members = {"members": ("toy", "eegnet")} if arch != "toy" else {}
    first = fit_substitute(_attack(seed, arch, **members), victim, scale, tmp_path)
    stored = [p.name for p in tmp_path.iterdir()]
    assert stored == [substitute_key(first, victim, scale)] and stored[0].startswith("s-")
    monkeypatch.setattr(JacobianSubstitute, "fit", _no_fit)
    again = fit_substitute(_attack(seed, arch, **members), victim, scale, tmp_path)
    assert again.training_queries_ == first.training_queries_ > 0
    assert again.members_ == first.members_ and (arch != "agreement" or len(again.members_) == 2)
    assert type(again.substitute_) is type(first.substitute_)
    a, b = first.substitute_.state_dict(), again.substitute_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    out_a = first(victim, evaluation.X, evaluation.y, epsilons=(0.1,), scale=scale)
    out_b = again(victim, evaluation.X, evaluation.y, epsilons=(0.1,), scale=scale)
    np.testing.assert_array_equal(out_a[0].X_adv, out_b[0].X_adv)


def test_the_key_covers_victim_seed_trials_scale_and_parameters(setup):
    victim, seed, _, scale = setup
    base = substitute_key(_attack(seed), victim, scale)
    changed = [substitute_key(_attack(seed), victim, scale * 2),
               substitute_key(_attack(seed.subset(np.arange(10))), victim, scale),
               substitute_key(JacobianSubstitute(seed=seed, arch="toy", rounds=2, train_config=FAST), victim, scale),
               substitute_key(_attack(seed, random_state=1), victim, scale)]
    with torch.no_grad():
        next(victim.parameters()).add_(1e-3)  # same architecture, other weights: other labels from the oracle
    changed.append(substitute_key(_attack(seed), victim, scale))
    assert base not in changed and len(set(changed)) == len(changed)
    assert substitute_key(_attack(seed), victim, scale) == changed[-1]  # and the same inputs, the same key


@pytest.mark.parametrize("meta_text", [
    "{not json", "[1, 2]", '{"kind": "single", "n_models": 1, "members": [], "training_queries": 40}',
    '{"kind": "ensemble", "n_models": 0, "members": {}, "training_queries": 40}',
    '{"kind": "single", "n_models": 2, "members": {}, "training_queries": 40}',
    '{"kind": "single", "n_models": 1, "members": {}, "training_queries": "many"}'])
def test_a_damaged_cached_substitute_is_trained_again(meta_text, setup, tmp_path, caplog, monkeypatch):
    victim, seed, _, scale = setup
    first = fit_substitute(_attack(seed), victim, scale, tmp_path)
    meta = tmp_path / substitute_key(first, victim, scale) / "substitute.json"
    meta.write_text(meta_text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="eegrobust.harness.cache"):
        again = fit_substitute(_attack(seed), victim, scale, tmp_path)
    assert "damaged cached substitute" in caplog.text
    assert again.training_queries_ == first.training_queries_
    a, b = first.substitute_.state_dict(), again.substitute_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    monkeypatch.setattr(JacobianSubstitute, "fit", _no_fit)  # the retrained substitute took the damaged one's place
    third = fit_substitute(_attack(seed), victim, scale, tmp_path)
    assert third.training_queries_ == first.training_queries_


def test_without_a_cache_folder_nothing_is_written(setup, tmp_path, monkeypatch):
    victim, seed, _, scale = setup
    monkeypatch.chdir(tmp_path)
    attack = fit_substitute(_attack(seed), victim, scale, None)
    assert attack.substitute_ is not None and list(tmp_path.iterdir()) == []


def test_a_suite_rerun_reads_its_substitutes_from_the_victim_cache(split, tmp_path, monkeypatch, one_torch_thread):
    from eegrobust.harness.cache import VictimCache
    from eegrobust.harness.suite import run_suite

    train, test = split
    config = SuiteConfig(models=("toy",), threat_models=("black_box",), black_box=("substitute",),
                         epsilons=(0.1,), substitute_arch="toy", substitute_rounds=1, n_seed_trials=20,
                         transfer_steps=2, train={"max_epochs": 2, "patience": None})
    first = run_suite(config, test=test, train=train, cache=VictimCache(tmp_path), progress=False)
    assert any(p.name.startswith("s-") for p in tmp_path.iterdir())
    monkeypatch.setattr(JacobianSubstitute, "fit", _no_fit)
    again = run_suite(config, test=test, train=train, cache=VictimCache(tmp_path), progress=False)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in first.rows]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in again.rows]
    assert again.provenance["substitute_training_queries"] == first.provenance["substitute_training_queries"]
    # --no-cache trains it
    with pytest.raises(AssertionError, match="trained again"):
        run_suite(config, test=test, train=train, cache=VictimCache(tmp_path, enabled=False), progress=False)


def test_a_damaged_cached_victim_is_trained_again_and_replaced(split, tmp_path, caplog, one_torch_thread):
    from eegrobust.harness.cache import VictimCache

    train, _ = split
    config = {"max_epochs": 1, "patience": None}
    _, key = VictimCache(tmp_path).get(train, "toy", config)
    (tmp_path / key / "weights.safetensors").write_bytes(b"\x80\x04garbage")  # a pickle's first bytes
    again = VictimCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="eegrobust.harness.cache"):
        retrained, _ = again.get(train, "toy", config)
    assert "damaged cached victim" in caplog.text and again.n_trained == 1
    third = VictimCache(tmp_path)
    loaded, _ = third.get(train, "toy", config)
    assert third.n_loaded == 1 and third.n_trained == 0
    a, b = retrained.state_dict(), loaded.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_unwritable_cache_only_warns(setup, tmp_path, caplog):
    victim, seed, _, scale = setup
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="eegrobust.harness.cache"):
        attack = fit_substitute(_attack(seed), victim, scale, blocker / "victims")
    assert attack.substitute_ is not None and attack.training_queries_ > 0
    assert "could not cache the substitute" in caplog.text


def test_a_pickle_in_a_cached_substitute_is_never_loaded(setup, tmp_path, caplog, monkeypatch):
    import pickle

    victim, seed, _, scale = setup
    first = fit_substitute(_attack(seed), victim, scale, tmp_path)
    weights = tmp_path / substitute_key(first, victim, scale) / "m0" / "weights.safetensors"
    weights.write_bytes(pickle.dumps({"not": "weights"}))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("a cached substitute was unpickled"))
    with caplog.at_level(logging.WARNING, logger="eegrobust.harness.cache"):
        again = fit_substitute(_attack(seed), victim, scale, tmp_path)
    assert "damaged cached substitute" in caplog.text and again.training_queries_ == first.training_queries_
