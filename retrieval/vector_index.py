"""A FAISS index from int64 ids (ticket ids) to unit vectors, searched by cosine similarity.

Small collections use an exact ``IndexIDMap2(IndexFlatIP)``. Past ``ivf_threshold`` vectors the index is
rebuilt as an ``IndexIVFScalarQuantizer`` (8-bit, inner product): ~4x less memory than float32 (about
400 MB at 1M x 384) and sub-linear search. Its ``nprobe`` is calibrated at build time against exact search
so recall@10 stays above the target, and a hashtable direct map keeps ``remove``/``upsert`` working.

FAISS is imported lazily; every method sets FAISS's OpenMP threads to ``threads`` (default 1) first.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._arrays import as_ids, isin_sorted, last_occurrence, sorted_unique
from retrieval._storage import read_container, write_container
from retrieval.errors import IndexCorrupt

FORMAT_VERSION = 1
MAGIC = b"SWBIDX01"
KIND_FLAT = "flat"
KIND_IVF = "ivf_sq8"
NPROBE_CANDIDATES: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 96, 128)
# Exact search costs ~6 ms per query at 47k real vectors on one core (benchmarks/bench_search.py --real);
# past this size the calibrated IVF index answers in under 1 ms at recall@10 >= 0.97.
DEFAULT_IVF_THRESHOLD = 20_000
DEFAULT_TARGET_RECALL = 0.97
"""Calibrate for 0.97 so that the 0.95 recall@10 goal holds with a margin on unseen queries."""
CALIBRATION_QUERIES = 200
MAX_TRAIN_POINTS = 128_000
"""k-means cost grows with points x centroids: at 1M vectors (4000 lists) 128k points, 32 per centroid,
train in ~40-50 s on two cores; 64 per centroid took ~90 s."""
MIN_POINTS_PER_LIST = 32


def _faiss(threads: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(threads)
    return faiss


def _choose_nlist(n: int) -> int:
    """About 4*sqrt(n) lists, but at least 39 points per list for small n (stable k-means)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


class VectorIndex:
    """Cosine-similarity index over unit vectors keyed by int64 ids. Not thread-safe for writes."""

    def __init__(
        self,
        dim: int,
        *,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        threads: int = 1,
        target_recall: float = DEFAULT_TARGET_RECALL,
        exact_filter_limit: int = 20_000,
        auto_rebuild: bool = True,
        seed: int = 0,
    ) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.dim = dim
        self.ivf_threshold = ivf_threshold
        self.threads = threads
        self.target_recall = target_recall
        self.exact_filter_limit = exact_filter_limit
        self.auto_rebuild = auto_rebuild
        self.seed = seed
        self._ids = np.zeros(0, dtype=np.int64)  # sorted, unique: membership without asking FAISS
        self._nprobe: int | None = None
        self._nlist: int | None = None
        self._calibrated_recall: float | None = None
        self._built_count = 0
        self._kind = KIND_FLAT
        self._index: Any = self._new_flat()

    # -- construction ---------------------------------------------------------------------------------

    @classmethod
    def empty(cls, dim: int, **options: Any) -> VectorIndex:
        """An empty exact index; ``options`` are the constructor's keyword arguments."""
        return cls(dim, **options)

    @classmethod
    def build(cls, ids: Any, vectors: Any, **options: Any) -> VectorIndex:
        """Build an index from scratch, choosing flat or IVF by the number of vectors."""
        ids_arr = as_ids(ids)
        first = np.asarray(vectors)
        if first.ndim != 2:
            raise ValueError("vectors must be a 2-D array")
        index = cls(first.shape[1], **options)
        index._build(ids_arr, index._prepare(first, ids_arr.size))
        return index

    def rebuild(self) -> None:
        """Rebuild from the stored vectors, re-choosing the kind by size and re-calibrating ``nprobe``.

        From an IVF index the stored vectors are the 8-bit decoded ones (cosine error ~1e-3); rebuild
        from the source embeddings (``KnowledgeBase.rebuild``) when full precision matters.
        """
        ids = self._ids.copy()
        vectors = self.reconstruct(ids) if ids.size else np.zeros((0, self.dim), dtype=np.float32)
        self._build(ids, vectors)

    def _new_flat(self) -> Any:
        faiss = _faiss(self.threads)
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        keep = last_occurrence(ids)
        if keep.size != ids.size:  # duplicates: copy only then (1.5 GB at 1M x 384)
            ids, vectors = ids[keep], np.ascontiguousarray(vectors[keep])
        if ids.size >= self.ivf_threshold and ids.size > 0:
            rng = np.random.default_rng(self.seed + 1)
            held_out = np.sort(rng.choice(ids.size, min(ids.size, CALIBRATION_QUERIES), replace=False))
            self._index = self._train_ivf(vectors, held_out)
            self._kind = KIND_IVF
            self._index.add_with_ids(vectors, ids)
            self._nprobe, self._calibrated_recall = self._calibrate_nprobe(ids, vectors, held_out)
            self._index.nprobe = self._nprobe
        else:
            self._index = self._new_flat()
            self._kind = KIND_FLAT
            self._nprobe = self._nlist = self._calibrated_recall = None
            if ids.size:
                self._index.add_with_ids(vectors, ids)
        self._ids = np.sort(ids)
        self._built_count = int(ids.size)

    def _train_ivf(self, vectors: np.ndarray, held_out: np.ndarray) -> Any:
        """Train the coarse quantizer and the 8-bit quantizer on a random sample that excludes
        ``held_out`` (the calibration queries), so calibration sees vectors k-means did not fit."""
        faiss = _faiss(self.threads)
        n = vectors.shape[0]
        nlist = _choose_nlist(n)
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        enough = n - held_out.size >= MIN_POINTS_PER_LIST * nlist
        pool = np.setdiff1d(np.arange(n), held_out) if enough else np.arange(n)
        n_train = min(pool.size, 64 * nlist, max(MAX_TRAIN_POINTS, MIN_POINTS_PER_LIST * nlist))
        rng = np.random.default_rng(self.seed)
        sample = pool if n_train == pool.size else np.sort(rng.choice(pool, n_train, replace=False))
        index.cp.seed = self.seed
        index.cp.min_points_per_centroid = MIN_POINTS_PER_LIST  # FAISS would warn below 39
        index.train(np.ascontiguousarray(vectors[sample]))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        self._nlist = nlist
        return index

    def _calibrate_nprobe(
        self, ids: np.ndarray, vectors: np.ndarray, held_out: np.ndarray
    ) -> tuple[int, float]:
        """Smallest candidate nprobe whose recall@10 reaches ``target_recall``.

        Queries are stored vectors held out of training; each query's own id is dropped from both the
        exact and the approximate results, since finding itself would inflate recall by up to 0.1.
        """
        faiss = _faiss(self.threads)
        queries = np.ascontiguousarray(vectors[held_out])
        k = min(10, vectors.shape[0] - 1)
        if k < 1:
            return 1, 1.0
        exact_pos = self._exact_knn(queries, vectors, k + 1)
        own = ids[held_out]
        truth = [
            [i for i in row if i != me][:k]
            for row, me in zip(ids[exact_pos].tolist(), own.tolist(), strict=True)
        ]
        nlist = int(self._nlist or 1)
        candidates = sorted({min(p, nlist) for p in NPROBE_CANDIDATES})
        recall = 0.0
        for nprobe in candidates:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, found = self._index.search(queries, k + 1, params=params)
            hits = [
                len(set(t) & {i for i in row if i != me})
                for t, row, me in zip(truth, found.tolist(), own.tolist(), strict=True)
            ]
            recall = sum(min(h, k) for h in hits) / (k * len(truth))
            if recall >= self.target_recall:
                return nprobe, recall
        return candidates[-1], recall

    def _exact_knn(self, queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
        """Positions of the exact top-``k`` by inner product, best first.

        Chunked NumPy matmul + argpartition: for ~200 queries against 1M vectors this takes ~4 s where
        ``faiss.knn`` took ~25 s (its blocking suits many queries, not few). BLAS threads are capped at
        ``threads`` when threadpoolctl is available.
        """
        try:
            from threadpoolctl import threadpool_limits

            limits: Any = threadpool_limits(limits=self.threads, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            limits = contextlib.nullcontext()
        best_scores = np.full((queries.shape[0], 0), -np.inf, dtype=np.float32)
        best_pos = np.zeros((queries.shape[0], 0), dtype=np.int64)
        with limits:
            for start in range(0, vectors.shape[0], 65_536):
                sims = queries @ vectors[start : start + 65_536].T
                best_scores = np.concatenate([best_scores, sims], axis=1)
                best_pos = np.concatenate(
                    [best_pos, np.broadcast_to(np.arange(start, start + sims.shape[1]), sims.shape)], axis=1
                )
                if best_scores.shape[1] > k:
                    keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
                    best_scores = np.take_along_axis(best_scores, keep, axis=1)
                    best_pos = np.take_along_axis(best_pos, keep, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        return np.take_along_axis(best_pos, order, axis=1)

    def _prepare(self, vectors: Any, n: int) -> np.ndarray:
        """Copy to contiguous float32 (n, dim), reject NaN/inf, and L2-normalise rows."""
        arr = np.array(vectors, dtype=np.float32, copy=True, order="C")
        if arr.ndim == 1 and n == 1:
            arr = arr.reshape(1, -1)
        if arr.shape != (n, self.dim):
            raise ValueError(f"vectors must have shape ({n}, {self.dim}), got {arr.shape}")
        if n and not np.isfinite(arr).all():
            raise ValueError("vectors contain NaN or infinity")
        if n:
            _faiss(self.threads).normalize_L2(arr)
        return arr

    # -- properties -----------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"ivf_sq8"`` (approximate, 8-bit)."""
        return self._kind

    @property
    def nprobe(self) -> int | None:
        """Lists probed per IVF search (chosen at build time); None for a flat index."""
        return self._nprobe

    @property
    def nlist(self) -> int | None:
        return self._nlist

    @property
    def calibrated_recall(self) -> float | None:
        """recall@10 against exact search measured when ``nprobe`` was chosen."""
        return self._calibrated_recall

    @property
    def needs_rebuild(self) -> bool:
        """True when the index kind no longer suits its size (flat past the threshold, or an IVF index
        that grew 4x since its lists were trained)."""
        n = len(self)
        if self._kind == KIND_FLAT:
            return n >= self.ivf_threshold
        return n > 4 * max(self._built_count, 1)

    def __len__(self) -> int:
        return int(self._ids.size)

    def ids(self) -> np.ndarray:
        """The stored ids, sorted ascending (a copy)."""
        return self._ids.copy()

    def contains(self, ids: Any) -> np.ndarray:
        """Boolean array: which of ``ids`` are stored."""
        return isin_sorted(as_ids(ids), self._ids)

    def memory_bytes(self) -> int:
        """Serialized size of the FAISS index, close to its memory use (serialises it: O(size))."""
        return int(_faiss(self.threads).serialize_index(self._index).size)

    # -- updates --------------------------------------------------------------------------------------

    def upsert(self, ids: Any, vectors: Any) -> None:
        """Add vectors; an id that is already stored has its vector replaced. Later duplicates win."""
        ids_arr = as_ids(ids)
        if ids_arr.size == 0:
            return
        arr = self._prepare(vectors, ids_arr.size)
        keep = last_occurrence(ids_arr)
        ids_arr, arr = ids_arr[keep], np.ascontiguousarray(arr[keep])
        existing = ids_arr[isin_sorted(ids_arr, self._ids)]
        if existing.size:
            self._remove_from_faiss(existing)
        _faiss(self.threads)
        self._index.add_with_ids(arr, ids_arr)
        new = ids_arr[~isin_sorted(ids_arr, self._ids)]
        self._ids = np.insert(self._ids, np.searchsorted(self._ids, new), new)
        if self.auto_rebuild and self.needs_rebuild:
            self.rebuild()

    def remove(self, ids: Any) -> int:
        """Remove ids (unknown ones are ignored); return how many were removed."""
        ids_arr = sorted_unique(ids)
        present = ids_arr[isin_sorted(ids_arr, self._ids)]
        if present.size == 0:
            return 0
        self._remove_from_faiss(present)
        self._ids = np.delete(self._ids, np.searchsorted(self._ids, present))
        return int(present.size)

    def _remove_from_faiss(self, ids: np.ndarray) -> None:
        faiss = _faiss(self.threads)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        # The IVF hashtable direct map only accepts an IDSelectorArray; keep ``ids`` alive meanwhile.
        selector = faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids))
        removed = self._index.remove_ids(selector)
        if removed != ids.size:
            raise RuntimeError(f"FAISS removed {removed} of {ids.size} vectors; index out of sync")

    # -- queries --------------------------------------------------------------------------------------

    def reconstruct(self, ids: Any) -> np.ndarray:
        """Stored vectors for ``ids`` (all must exist; KeyError otherwise). Decoded 8-bit for IVF."""
        ids_arr = as_ids(ids)
        missing = ids_arr[~isin_sorted(ids_arr, self._ids)]
        if missing.size:
            raise KeyError(f"ids not in the index: {missing[:10].tolist()}")
        if ids_arr.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        _faiss(self.threads)
        return np.asarray(self._index.reconstruct_batch(ids_arr), dtype=np.float32)

    def search(self, queries: Any, k: int, *, allowed_ids: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ids by cosine similarity for each query row.

        Returns ``(scores, ids)`` of shape (m, k): float32 cosines best first, int64 ids with -1 (score
        -inf) where fewer than ``k`` results exist. ``allowed_ids`` restricts the search to those ids
        (an empty array gives no results); small allowed sets are searched exactly.
        """
        if k < 1:
            raise ValueError("k must be >= 1")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        q = self._prepare(q, q.shape[0])
        m = q.shape[0]
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        found = np.full((m, k), -1, dtype=np.int64)
        if m == 0 or len(self) == 0:
            return scores, found
        faiss = _faiss(self.threads)
        if allowed_ids is None:
            params = faiss.SearchParametersIVF(nprobe=self._nprobe) if self._kind == KIND_IVF else None
            dist, idx = self._index.search(q, k, params=params)
            return self._clean(dist, idx)
        allowed = sorted_unique(allowed_ids)
        allowed = allowed[isin_sorted(allowed, self._ids)]
        if allowed.size == 0:
            return scores, found
        if allowed.size <= self.exact_filter_limit:
            return self._search_exact(q, k, allowed)
        selector = faiss.IDSelectorBatch(allowed)
        if self._kind == KIND_FLAT:
            dist, idx = self._index.search(q, k, params=faiss.SearchParameters(sel=selector))
            return self._clean(dist, idx)
        return self._search_ivf_filtered(q, k, selector, int(min(k, allowed.size)))

    def _search_exact(self, q: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the allowed vectors: exact, and immune to IVF lists holding none of them."""
        vectors = self.reconstruct(allowed)
        sims = q @ vectors.T
        kk = min(k, allowed.size)
        if kk < allowed.size:
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(allowed.size), sims.shape)
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        found = np.full((q.shape[0], k), -1, dtype=np.int64)
        scores[:, :kk] = np.clip(np.take_along_axis(top_sims, order, axis=1), -1.0, 1.0)
        found[:, :kk] = allowed[np.take_along_axis(top, order, axis=1)]
        return scores, found

    def _search_ivf_filtered(
        self, q: np.ndarray, k: int, selector: Any, wanted: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filtered IVF search; rows that found fewer than ``wanted`` hits retry with 4x more lists,
        because a selective filter may leave the probed lists almost empty."""
        faiss = _faiss(self.threads)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        found = np.full((q.shape[0], k), -1, dtype=np.int64)
        rows = np.arange(q.shape[0])
        nprobe = int(self._nprobe or 1)
        nlist = int(self._nlist or 1)
        while rows.size:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            dist, idx = self._index.search(np.ascontiguousarray(q[rows]), k, params=params)
            scores[rows], found[rows] = self._clean(dist, idx)
            if nprobe >= nlist:
                break
            rows = rows[(found[rows] >= 0).sum(axis=1) < wanted]
            nprobe = min(nlist, nprobe * 4)
        return scores, found

    @staticmethod
    def _clean(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(dist, dtype=np.float32).copy()
        ids = np.asarray(idx, dtype=np.int64).copy()
        np.clip(scores, -1.0, 1.0, out=scores)  # 8-bit decoding can overshoot 1.0 slightly
        scores[ids < 0] = -np.inf
        return scores, ids

    # -- persistence ----------------------------------------------------------------------------------

    def save(self, path: Path, *, meta: dict[str, Any]) -> None:
        """Atomically write the index and ``meta`` (JSON-serialisable) to one file."""
        faiss = _faiss(self.threads)
        payload = faiss.serialize_index(self._index)
        header = {
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "kind": self._kind,
            "count": len(self),
            "nprobe": self._nprobe,
            "nlist": self._nlist,
            "calibrated_recall": self._calibrated_recall,
            "built_count": self._built_count,
            "meta": meta,
        }
        write_container(Path(path), MAGIC, header, payload)

    @classmethod
    def load(cls, path: Path, **options: Any) -> tuple[VectorIndex, dict[str, Any]]:
        """Read an index written by ``save``; return it with its header (``header["meta"]`` is the meta).

        Raises ``IndexCorrupt`` or ``IndexFormatMismatch`` (both ``IndexLoadError``).
        """
        header, payload = read_container(Path(path), MAGIC, format_version=FORMAT_VERSION)
        try:
            dim, kind, count = int(header["dim"]), str(header["kind"]), int(header["count"])
            nprobe = header.get("nprobe")
            nlist = header.get("nlist")
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexCorrupt(f"{path}: bad header: {exc}") from exc
        if kind not in (KIND_FLAT, KIND_IVF) or dim < 1:
            raise IndexCorrupt(f"{path}: bad header kind={kind!r} dim={dim}")
        index = cls(dim, **options)
        faiss = _faiss(index.threads)
        try:
            raw = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise IndexCorrupt(f"{path}: FAISS cannot read the index: {exc}") from exc
        expected_type = faiss.IndexIDMap2 if kind == KIND_FLAT else faiss.IndexIVFScalarQuantizer
        if not isinstance(raw, expected_type) or raw.d != dim:
            raise IndexCorrupt(f"{path}: index is {type(raw).__name__} d={raw.d}, header says {kind} d={dim}")
        if kind == KIND_FLAT:
            ids = faiss.vector_to_array(raw.id_map).astype(np.int64)
        else:
            if raw.direct_map.type != faiss.DirectMap.Hashtable or not nprobe or not nlist:
                raise IndexCorrupt(f"{path}: IVF index without its direct map or nprobe")
            ids = _ivf_ids(faiss, raw)
            raw.nprobe = int(nprobe)
        ids = np.sort(ids)
        if raw.ntotal != count or ids.size != count or (count and np.any(ids[1:] == ids[:-1])):
            raise IndexCorrupt(f"{path}: header count {count}, index holds {raw.ntotal} ({ids.size} ids)")
        index._index, index._kind, index._ids = raw, kind, ids
        index._nprobe = int(nprobe) if kind == KIND_IVF and nprobe is not None else None
        index._nlist = int(nlist) if kind == KIND_IVF and nlist is not None else None
        index._calibrated_recall = header.get("calibrated_recall")
        index._built_count = int(header.get("built_count") or count)
        return index, header


def _ivf_ids(faiss: Any, index: Any) -> np.ndarray:
    """All ids stored in an IVF index, read list by list from its inverted lists."""
    invlists = index.invlists
    parts = []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).copy())
            invlists.release_ids(list_no, ptr)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
