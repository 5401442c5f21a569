"""VectorIndex on the real FAISS: exact and IVF paths, filters, updates and the on-disk format."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import IndexCorrupt, IndexFormatMismatch, IndexLoadError
from retrieval.vector_index import FORMAT_VERSION, KIND_FLAT, KIND_IVF, MAGIC, NPROBE_CANDIDATES, VectorIndex


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def clustered(n: int, dim: int, *, seed: int, clusters: int = 50, noise: float = 0.6) -> np.ndarray:
    """Unit vectors around fixed random centres (the same for every ``seed``), like embeddings of tickets
    about a few dozen topics; ``seed`` only changes which points are drawn."""
    centres = np.random.default_rng(12345 + dim).standard_normal((clusters, dim))
    rng = np.random.default_rng(seed)
    return unit(centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim)))


def exact_top(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([np.intersect1d(f, t).size / t.size for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def ivf_data() -> tuple[np.ndarray, np.ndarray, VectorIndex]:
    vectors = clustered(5_000, 32, seed=1)
    ids = np.arange(5_000, dtype=np.int64) * 7 + 3  # ids are not positions
    return ids, vectors, VectorIndex.build(ids, vectors, ivf_threshold=2_000)


def test_flat_upsert_replace_remove_and_search() -> None:
    index = VectorIndex.empty(8)
    vectors = unit(np.eye(8)[:4] + 0.01)
    index.upsert(np.array([10, 20, 30, 40]), vectors)
    assert len(index) == 4 and index.kind == KIND_FLAT
    assert index.ids().tolist() == [10, 20, 30, 40]

    scores, ids = index.search(vectors[1], 2)
    assert ids[0, 0] == 20 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)

    index.upsert(np.array([20]), vectors[3:4])  # replace: 20 now points where 40 does
    assert len(index) == 4
    _, ids = index.search(vectors[1], 1)
    assert ids[0, 0] != 20
    _, ids = index.search(vectors[3], 2)
    assert set(ids[0].tolist()) == {20, 40}

    assert index.remove(np.array([20, 999])) == 1
    assert index.ids().tolist() == [10, 30, 40]
    scores, ids = index.search(vectors[0], 10)
    assert ids[0, :3].tolist() == [10, 30, 40] or set(ids[0, :3].tolist()) == {10, 30, 40}
    assert (ids[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()


def test_vectors_are_normalised_and_duplicates_keep_the_last() -> None:
    index = VectorIndex.empty(3)
    index.upsert([1, 1], np.array([[10.0, 0, 0], [0, 5.0, 0]]))
    assert len(index) == 1
    np.testing.assert_allclose(index.reconstruct([1]), [[0, 1, 0]], atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        index.upsert([2], np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        index.upsert([2], np.zeros((1, 4)))


def test_filtered_search_flat() -> None:
    vectors = clustered(300, 16, seed=2)
    ids = np.arange(300, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, exact_filter_limit=10)
    allowed = ids[ids % 3 == 0]
    for limit in (10, 10_000):  # selector path and exact brute-force path
        index.exact_filter_limit = limit
        scores, found = index.search(vectors[:5], 7, allowed_ids=allowed)
        np.testing.assert_array_equal(found, exact_top(vectors[:5], allowed, vectors[allowed], 7))
        assert np.all(np.diff(scores, axis=1) <= 1e-6)
    _, found = index.search(vectors[:2], 3, allowed_ids=np.array([], dtype=np.int64))
    assert (found == -1).all()
    _, found = index.search(vectors[:1], 3, allowed_ids=np.array([5, 100_000]))
    assert found[0].tolist() == [5, -1, -1]


def test_ivf_recall_and_calibration(ivf_data: tuple[np.ndarray, np.ndarray, VectorIndex]) -> None:
    ids, vectors, index = ivf_data
    assert index.kind == KIND_IVF
    assert index.nprobe is not None and index.nlist is not None
    assert index.nprobe in NPROBE_CANDIDATES and index.nprobe < index.nlist
    assert index.calibrated_recall is not None and index.calibrated_recall >= 0.97
    queries = clustered(200, 32, seed=99)  # unseen queries from the same distribution
    _, found = index.search(queries, 10)
    assert recall_at(found, exact_top(queries, ids, vectors, 10)) >= 0.95


def test_nprobe_calibration_adapts_to_hard_data() -> None:
    """Uniform vectors have no clusters: few probed lists miss neighbours, so calibration must probe more."""
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((5_000, 16)))
    ids = np.arange(5_000, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, ivf_threshold=2_000)
    assert index.nprobe is not None and index.nprobe > NPROBE_CANDIDATES[1]
    assert index.calibrated_recall is not None and index.calibrated_recall >= 0.97
    queries = unit(rng.standard_normal((200, 16)))
    _, found = index.search(queries, 10)
    assert recall_at(found, exact_top(queries, ids, vectors, 10)) >= 0.95


def test_ivf_filtered_search_is_exact_for_small_sets_and_widens_for_large(
    ivf_data: tuple[np.ndarray, np.ndarray, VectorIndex],
) -> None:
    ids, vectors, index = ivf_data
    queries = clustered(20, 32, seed=5)
    few = ids[::250]  # 20 ids scattered over many lists: plain IVF probing would miss most
    _, found = index.search(queries, 5, allowed_ids=few)
    # exact over the stored (8-bit decoded) vectors, so equal to brute force up to quantisation
    np.testing.assert_array_equal(found, exact_top(queries, few, index.reconstruct(few), 5))
    assert recall_at(found, exact_top(queries, few, vectors[::250], 5)) >= 0.95

    index.exact_filter_limit = 100  # force the IVF selector path for 500 allowed ids
    try:
        many = ids[::10]
        _, found = index.search(queries, 10, allowed_ids=many)
    finally:
        index.exact_filter_limit = 20_000
    assert np.isin(found, many).all()  # every slot filled, only allowed ids
    assert recall_at(found, exact_top(queries, many, vectors[::10], 10)) >= 0.9


def test_ivf_upsert_and_remove() -> None:
    ids = np.arange(4_000, dtype=np.int64)
    vectors = clustered(4_000, 32, seed=3)
    index = VectorIndex.build(ids, vectors, ivf_threshold=2_000)
    assert index.kind == KIND_IVF
    fresh = clustered(50, 32, seed=4)
    index.upsert(ids[:50], fresh)  # replace
    index.upsert(np.arange(10_000, 10_050), fresh)  # add
    assert len(index) == 4_050
    _, found = index.search(fresh, 2)
    for row, (old_id, new_id) in enumerate(zip(ids[:50], range(10_000, 10_050), strict=True)):
        assert set(found[row].tolist()) == {int(old_id), new_id}
    _, found = index.search(vectors[:50], 10)
    assert recall_at(found, exact_top(vectors[:50], ids[50:], vectors[50:], 10)) >= 0.9  # old vectors gone

    assert index.remove(np.arange(10_000, 10_050)) == 50
    assert index.remove(np.arange(10_000, 10_050)) == 0
    _, found = index.search(fresh, 5)
    assert not np.isin(found, np.arange(10_000, 10_050)).any()
    assert len(index) == 4_000 and index.contains([0, 10_000]).tolist() == [True, False]


def test_flat_index_turns_into_ivf_past_the_threshold() -> None:
    vectors = clustered(1_200, 16, seed=6)
    index = VectorIndex.empty(16, ivf_threshold=1_000)
    index.upsert(np.arange(900), vectors[:900])
    assert index.kind == KIND_FLAT
    index.upsert(np.arange(900, 1_200), vectors[900:])
    assert index.kind == KIND_IVF and len(index) == 1_200
    _, found = index.search(vectors[1_100], 1)
    assert found[0, 0] == 1_100


@pytest.mark.parametrize("kind", [KIND_FLAT, KIND_IVF])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    n = 3_000
    vectors = clustered(n, 24, seed=7)
    ids = np.arange(n, dtype=np.int64) * 2
    index = VectorIndex.build(ids, vectors, ivf_threshold=2_000 if kind == KIND_IVF else 10_000)
    index.remove(ids[:10])
    path = tmp_path / "vectors.idx"
    index.save(path, meta={"model": "m", "synced_version": 42})

    loaded, header = VectorIndex.load(path)
    assert header["format_version"] == FORMAT_VERSION
    assert (header["kind"], header["count"], header["dim"]) == (kind, n - 10, 24)
    assert header["meta"] == {"model": "m", "synced_version": 42}
    assert loaded.kind == kind and loaded.nprobe == index.nprobe and len(loaded) == n - 10
    np.testing.assert_array_equal(loaded.ids(), ids[10:])
    queries = clustered(30, 24, seed=8)
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    loaded.upsert(ids[:1], vectors[:1])  # still updatable after loading
    assert loaded.search(vectors[0], 1)[1][0, 0] == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "v.idx"
    VectorIndex.build(np.arange(100), clustered(100, 8, seed=9)).save(path, meta={})
    return path


def test_truncated_file_is_corrupt(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    for size in (0, 5, 14, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(IndexCorrupt):
            VectorIndex.load(path)


def test_garbage_is_corrupt(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    with pytest.raises(IndexCorrupt, match="magic"):
        VectorIndex.load(path)
    header_len = struct.unpack_from("<I", data, 8)[0]
    data[12 + header_len + 40 : 12 + header_len + 60] = b"\xff" * 20  # damage the FAISS bytes only
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        VectorIndex.load(path)


def _rewrite_header(path: Path, **changes: object) -> None:
    data = path.read_bytes()
    header_len = struct.unpack_from("<I", data, 8)[0]
    header = json.loads(data[12 : 12 + header_len])
    header.update(changes)
    raw = json.dumps(header).encode()
    path.write_bytes(MAGIC + struct.pack("<I", len(raw)) + raw + data[12 + header_len :])


def test_bad_header_json_and_count_mismatch_are_corrupt(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:12] + b"x" + data[13:])
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(path)
    path = _saved(tmp_path)
    _rewrite_header(path, count=99)
    with pytest.raises(IndexCorrupt, match="count"):
        VectorIndex.load(path)


def test_other_format_version_is_a_mismatch(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _rewrite_header(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(IndexFormatMismatch) as info:
        VectorIndex.load(path)
    assert isinstance(info.value, IndexLoadError)
