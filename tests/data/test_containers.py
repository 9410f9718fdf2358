import numpy as np
import pandas as pd
import pytest

from eegrobust.data import DataError, EEGData, concat_data


def _data(n=6, *, classes=("a", "b"), ch_names=("C3", "C4"), sfreq=100.0, n_times=8, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 10, size=(n, len(ch_names), n_times))
    return EEGData(X, np.arange(n) % len(classes), sfreq, ch_names, classes, **kwargs)


def test_metadata_defaults_positional():
    X = np.random.default_rng(0).normal(0, 10, size=(4, 2, 8))
    data = EEGData(X, [0, 1, 0, 1], 100.0, ("a", "b"), ("x", "y"), np.array([0, 0, 1, 1], bool))
    meta = data.metadata
    assert isinstance(meta.index, pd.RangeIndex) and len(meta) == 4
    assert list(meta["subject"]) == ["1"] * 4
    assert list(meta["session"]) == ["0"] * 4 and list(meta["run"]) == ["0"] * 4
    assert meta["is_synthetic"].tolist() == [False, False, True, True]
    assert data.subjects == ("1",)


def test_metadata_kept_as_str_with_range_index():
    meta = pd.DataFrame({"subject": [3, 3, 1, 1], "session": [1, 2, 1, 2], "extra": list("wxyz")},
                        index=[10, 11, 12, 13])
    data = _data(4, metadata=meta)
    assert list(data.metadata.index) == [0, 1, 2, 3]
    assert list(data.metadata["subject"]) == ["3", "3", "1", "1"]
    assert list(data.metadata["extra"]) == list("wxyz")
    assert data.subjects == ("3", "1")
    assert data.sessions_of(1) == ("1", "2")
    assert list(meta.index) == [10, 11, 12, 13] and "run" not in meta  # the caller's frame is untouched


def test_is_synthetic_from_metadata_or_field():
    meta = pd.DataFrame({"is_synthetic": [True, False, False, True]})
    from_column = _data(4, metadata=meta)
    assert from_column.is_synthetic.tolist() == [True, False, False, True]
    field_wins = _data(4, is_synthetic=np.zeros(4, bool), metadata=meta)
    assert not field_wins.is_synthetic.any() and not field_wins.metadata["is_synthetic"].any()


def test_metadata_bad_input():
    with pytest.raises(DataError, match=r"metadata must have one row per trial \(4\), got 3 rows"):
        _data(4, metadata=pd.DataFrame({"subject": ["1"] * 3}))
    with pytest.raises(TypeError, match="metadata must be a pandas.DataFrame or None, got dict"):
        _data(4, metadata={"subject": ["1"] * 4})
    with pytest.raises(DataError, match=r"metadata column 'session' has 1 missing value\(s\) \(first in row 2\)"):
        _data(4, metadata=pd.DataFrame({"session": ["1", "1", None, "2"]}))
    with pytest.raises(DataError, match=r"is_synthetic must have shape \(4,\), got \(3,\)"):
        _data(4, is_synthetic=np.zeros(3, bool))


def test_sessions_of_unknown_subject():
    with pytest.raises(DataError, match=r"subject '9' is not in the data; subjects are \['1'\]"):
        _data().sessions_of("9")


def test_subset_slices_metadata():
    meta = pd.DataFrame({"subject": list("aabbcc"), "note": range(6)})
    data = _data(6, metadata=meta, is_synthetic=np.r_[np.zeros(5, bool), True])
    part = data.subset([5, 1, 3])
    assert list(part.metadata.index) == [0, 1, 2]
    assert list(part.metadata["subject"]) == ["c", "a", "b"] and list(part.metadata["note"]) == [5, 1, 3]
    assert part.is_synthetic.tolist() == [True, False, False] == part.metadata["is_synthetic"].tolist()
    masked = data.subset(data.metadata["subject"].to_numpy() == "b")
    assert masked.subjects == ("b",) and masked.n_trials == 2


def test_relabel_by_name():
    data = _data(6, classes=("b", "a"))
    names = [data.classes[k] for k in data.y]
    out = data.relabel(("a", "b", "c"))
    assert out.classes == ("a", "b", "c")
    assert [out.classes[k] for k in out.y] == names
    assert data.relabel(("b", "a")) is data


def test_relabel_ignores_empty_classes():
    data = EEGData(np.ones((2, 1, 4)) * [[[1, -1, 1, -1]]], [0, 2], 100.0, ("c",), ("a", "unused", "b"))
    assert data.relabel(("b", "a")).y.tolist() == [1, 0]


def test_relabel_errors():
    data = _data(classes=("a", "b"))
    with pytest.raises(DataError, match=r"the data's classes \('a', 'b'\) are not all in \('a', 'c'\) "
                                        r"\(missing \['b'\]\)"):
        data.relabel(("a", "c"))
    with pytest.raises(DataError, match="must not repeat a name"):
        data.relabel(("a", "b", "a"))


def test_data_hash_covers_metadata():
    a = _data()
    same = _data()
    other_subject = _data(metadata=pd.DataFrame({"subject": ["2"] * 6}))
    other_session = _data(metadata=pd.DataFrame({"session": ["1"] * 6}))
    extra_column = _data(metadata=pd.DataFrame({"source": ["x.fif"] * 6}))
    synthetic = _data(is_synthetic=np.ones(6, bool))
    assert a.data_hash() == same.data_hash() == extra_column.data_hash()
    hashes = {a.data_hash(), other_subject.data_hash(), other_session.data_hash(), synthetic.data_hash()}
    assert len(hashes) == 4


def test_concat_unifies_classes_by_name():
    first = _data(4, classes=("a", "b"), metadata=pd.DataFrame({"subject": ["1"] * 4}))
    second = _data(4, classes=("c", "b"), seed=1, metadata=pd.DataFrame({"subject": ["2"] * 4, "x": range(4)}))
    both = concat_data([first, second])
    assert both.classes == ("a", "b", "c")
    names = [first.classes[k] for k in first.y] + [second.classes[k] for k in second.y]
    assert [both.classes[k] for k in both.y] == names
    np.testing.assert_array_equal(both.X, np.concatenate([first.X, second.X]))
    assert both.subjects == ("1", "2") and list(both.metadata.index) == list(range(8))
    assert both.metadata["x"].isna().sum() == 4
    assert concat_data([first]) is first


@pytest.mark.parametrize("change, match", [
    ({"ch_names": ("C3", "Cz")}, r"has ch_names \('C3', 'Cz'\) but subject '1' has \('C3', 'C4'\)"),
    ({"sfreq": 250.0}, r"has sfreq 250.0 but subject '1' has 100.0"),
    ({"n_times": 9}, r"has n_times 9 but subject '1' has 8"),
], ids=["ch_names", "sfreq", "n_times"])
def test_concat_mismatch_names_subject(change, match):
    first = _data(metadata=pd.DataFrame({"subject": ["1"] * 6}))
    second = _data(metadata=pd.DataFrame({"subject": ["2"] * 6, "source": ["s2_epo.fif"] * 6}), **change)
    with pytest.raises(DataError, match=r"subject '2' \(file 's2_epo.fif'\) " + match) as excinfo:
        concat_data([first, second])
    assert "\n" not in str(excinfo.value)


def test_concat_bad_input():
    with pytest.raises(DataError, match="at least one EEGData"):
        concat_data([])
    with pytest.raises(TypeError, match=r"datas\[1\] must be an EEGData, got str"):
        concat_data([_data(), "x"])


def test_concat_reorders_the_same_channels_by_name():
    """A file that lists the montage's channels in another order is reordered by name, with a warning; each
    channel's signal stays with its name."""
    first = _data(ch_names=("C3", "C4", "Cz"), metadata=pd.DataFrame({"subject": ["1"] * 6}))
    second = _data(ch_names=("Cz", "C3", "C4"), seed=1, metadata=pd.DataFrame({"subject": ["2"] * 6}))
    with pytest.warns(UserWarning, match=r"subject '2' lists the channels of subject '1' in another order; its "
                                         r"channels are reordered by name"):
        both = concat_data([first, second])
    assert both.ch_names == ("C3", "C4", "Cz")
    np.testing.assert_array_equal(both.X[6:, 2], second.X[:, 0])  # Cz
    np.testing.assert_array_equal(both.X[6:, 0], second.X[:, 1])  # C3
    assert second.reorder_channels(("Cz", "C3", "C4")) is second
    with pytest.raises(DataError, match="not the same names"):
        second.reorder_channels(("Cz", "C3", "Fz"))
