"""data.augment: mixing synthetic trials into a training set, and the braindecode batch augmentation."""

import numpy as np
import pytest
import torch

from eegrobust.data import ConfigError, DataError, EEGData, epochs_to_data
from eegrobust.data.augment import BatchAugmentation, class_quotas, mix_synthetic, synthetic_mask


def _data(n=20, n_chans=3, n_times=64, synthetic=False, seed=0, classes=("a", "b")):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % len(classes)
    X = rng.normal(size=(n, n_chans, n_times)).astype(np.float32) * 10
    return EEGData(X, y, 128.0, tuple(f"C{i}" for i in range(n_chans)), classes, np.full(n, synthetic))


@pytest.fixture
def real():
    return _data(21)


@pytest.fixture
def pool():
    return _data(60, synthetic=True, seed=1)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_mix_adds_ratio_times_real_balanced(real, pool, ratio):
    mixed = mix_synthetic(real, pool, ratio, random_state=0)
    n_syn = round(ratio * real.n_trials)
    assert mixed.n_trials == real.n_trials + n_syn
    assert mixed.is_synthetic.sum() == n_syn
    counts = np.bincount(mixed.y[mixed.is_synthetic], minlength=2)
    assert abs(counts[0] - counts[1]) <= 1


def test_mix_keeps_real_trials_first_in_order(real, pool):
    mixed = mix_synthetic(real, pool, 1.0, random_state=0)
    np.testing.assert_array_equal(mixed.X[:real.n_trials], real.X)
    np.testing.assert_array_equal(mixed.y[:real.n_trials], real.y)
    assert not mixed.is_synthetic[:real.n_trials].any() and mixed.is_synthetic[real.n_trials:].all()


def test_mix_is_seeded(real, pool):
    a, b = (mix_synthetic(real, pool, 1.0, random_state=3) for _ in range(2))
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, mix_synthetic(real, pool, 1.0, random_state=4).X)


def test_mix_ratio_zero_returns_real(real, pool):
    assert mix_synthetic(real, pool, 0, random_state=0) is real


@pytest.mark.parametrize("ratio", [-0.5, float("nan"), "1", True])
def test_mix_rejects_bad_ratio(real, pool, ratio):
    with pytest.raises(ConfigError, match="ratio must be a number >= 0"):
        mix_synthetic(real, pool, ratio)


def test_mix_from_callable(real):
    calls = []

    def generate(n, label):
        calls.append((n, label))
        return np.full((n, real.n_chans, real.n_times), float(label), np.float32)

    mixed = mix_synthetic(real, generate, 1.0, random_state=0)
    assert sorted(n for n, _ in calls) == [10, 11]
    syn = mixed.subset(mixed.is_synthetic)
    np.testing.assert_array_equal(syn.X[:, 0, 0], syn.y.astype(np.float32))


def test_mix_callable_wrong_shape(real):
    with pytest.raises(DataError, match="returned shape"):
        mix_synthetic(real, lambda n, label: np.zeros((n, 2, 5)), 1.0)


def test_mix_pool_too_small(real):
    with pytest.raises(DataError, match="trials of class 'a'"):
        mix_synthetic(real, _data(4, synthetic=True), 1.0)


def test_mix_pool_must_match_and_be_synthetic(real):
    with pytest.raises(DataError, match="channels"):
        mix_synthetic(real, _data(60, n_chans=2, synthetic=True), 1.0)
    with pytest.raises(DataError, match="not marked is_synthetic"):
        mix_synthetic(real, _data(60), 1.0)


def test_class_quotas_sum_and_balance():
    q = class_quotas(11, 3, random_state=0)
    assert q.sum() == 11 and q.max() - q.min() <= 1


def test_synthetic_mask(synth_epochs):
    import pandas as pd

    assert not synthetic_mask(synth_epochs).any()
    marked = synth_epochs.copy()
    marked.metadata = pd.DataFrame({"is_synthetic": np.arange(len(marked)) % 2 == 0})
    np.testing.assert_array_equal(synthetic_mask(marked), np.arange(len(marked)) % 2 == 0)
    # the mark survives conversion to EEGData
    np.testing.assert_array_equal(epochs_to_data(marked).is_synthetic, np.arange(len(marked)) % 2 == 0)


def test_batch_augmentation_appends_transformed_copies(real):
    aug = BatchAugmentation(ratio=0.5, probability=1.0, random_state=0)
    aug.on_train_begin(None, real)
    X, y = torch.from_numpy(real.X[:8]), torch.from_numpy(real.y[:8])
    X_out, y_out = aug.on_batch_begin(None, X, y)
    assert X_out.shape == (12, real.n_chans, real.n_times) and y_out.shape == (12,)
    torch.testing.assert_close(X_out[:8], X)
    assert not torch.allclose(X_out[8:], X[:4])
    assert aug.n_augmented_ == 4


def test_batch_augmentation_is_seeded(real):
    outs = []
    for _ in range(2):
        aug = BatchAugmentation(ratio=1.0, random_state=5)
        aug.on_train_begin(None, real)
        outs.append(aug.on_batch_begin(None, torch.from_numpy(real.X[:8]), torch.from_numpy(real.y[:8]))[0])
    torch.testing.assert_close(outs[0], outs[1])


def test_batch_augmentation_bad_options(real):
    with pytest.raises(ConfigError, match="transform must be one of"):
        BatchAugmentation(transforms=("ftsurogate",)).on_train_begin(None, real)
    with pytest.raises(ConfigError, match="ratio"):
        BatchAugmentation(ratio=-1).on_train_begin(None, real)
    assert "ratio=0.5" in repr(BatchAugmentation(ratio=0.5))
