"""The id-array helpers every index relies on for dedup ("last write wins") and membership."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval._arrays import as_ids, isin_sorted, last_occurrence, sorted_unique


def test_as_ids_accepts_any_iterable_of_ints() -> None:
    assert as_ids({3, 1}).dtype == np.int64 and sorted(as_ids({3, 1}).tolist()) == [1, 3]
    assert as_ids(i for i in range(3)).tolist() == [0, 1, 2]
    assert as_ids(()).shape == (0,)
    with pytest.raises(TypeError):
        as_ids([1.5])


def test_sorted_unique_and_membership() -> None:
    assert sorted_unique([5, 1, 5, 3, 1]).tolist() == [1, 3, 5]
    assert sorted_unique(np.array([1, 2, 3])).tolist() == [1, 2, 3]
    assert isin_sorted(np.array([0, 1, 4, 5, 9]), np.array([1, 3, 5])).tolist() == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert isin_sorted(np.array([1]), np.zeros(0, dtype=np.int64)).tolist() == [False]


def test_last_occurrence_keeps_the_latest_write() -> None:
    ids = np.array([7, 3, 7, 1, 3, 7])
    keep = last_occurrence(ids)
    assert ids[keep].tolist() == [1, 3, 7]
    assert keep.tolist() == [3, 4, 5]
    assert last_occurrence(np.zeros(0, dtype=np.int64)).size == 0
