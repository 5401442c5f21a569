"""The knowledge base of past tickets: hybrid (dense + BM25) search with metadata filters, persisted safely.

It ties together a ``VectorIndex`` (cosine over embeddings), a ``LexicalIndex`` (BM25) and a ``DocTable``
(category, team, resolution time) that always hold the same ids. Results of both searches are fused with
Reciprocal Rank Fusion, which needs no score calibration between cosine and BM25.

On disk (``directory``): ``vectors.idx``, ``lexical.idx`` and ``docs.meta``, each replaced atomically and
tagged with a save ``generation``, then ``manifest.json`` written last. A reader trusts files only when
their generation matches the manifest's, so a crash between two file writes is detected as stale instead
of silently mixing two saves. Writers serialise through an fcntl lock on ``directory/.lock``; readers
need no lock. The file names, the manifest and the lock are in :mod:`retrieval.kb_files`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._arrays import VectorBuffer, sorted_unique
from retrieval._storage import atomic_write_json
from retrieval.doc_table import DocTable
from retrieval.embeddings import Embedder
from retrieval.errors import IndexCorrupt, IndexFormatMismatch, KnowledgeBaseStale
from retrieval.kb_files import (
    DOCS_FILE,
    FORMAT_VERSION,
    LEXICAL_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    VECTORS_FILE,
    GenerationMismatch,
    acquire_file_lock,
    check_files,
    read_manifest,
)
from retrieval.lexical import DEFAULT_AUTO_COMPACT_DOCS, LexicalIndex
from retrieval.vector_index import DEFAULT_IVF_THRESHOLD, VectorIndex

__all__ = ["Hit", "KBDocument", "KnowledgeBase", "KnowledgeBaseStale"]

DEFAULT_RRF_K = 60
MIN_CANDIDATES = 50
EMBED_CHUNK = 1024
"""Texts per ``embedder.encode`` call: bounds memory while letting the embedder batch internally."""
_LOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class KBDocument:
    """A past ticket to index. ``resolved_at`` is in unix seconds."""

    id: int
    text: str
    category: str | None = None
    team: str | None = None
    resolved_at: float | None = None


@dataclass(frozen=True)
class Hit:
    """A search result. ``score`` is the fused RRF score (cosine for vector-only searches);
    ``dense_score`` is the cosine similarity and ``lexical_score`` the BM25 score, where known."""

    id: int
    score: float
    dense_score: float | None
    lexical_score: float | None
    category: str | None
    team: str | None


def _batched(items: Iterable[KBDocument], size: int) -> Iterator[list[KBDocument]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class KnowledgeBase:
    """Hybrid search over past tickets. Thread-safe: one internal lock guards reads and writes."""

    def __init__(
        self,
        embedder: Embedder,
        directory: Path,
        *,
        ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
        threads: int = 1,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        rrf_k: int = DEFAULT_RRF_K,
        auto_compact_docs: int = DEFAULT_AUTO_COMPACT_DOCS,
    ) -> None:
        self.embedder = embedder
        self.directory = Path(directory)
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight
        self.rrf_k = rrf_k
        self._vector_options: dict[str, Any] = {"ivf_threshold": ivf_threshold, "threads": threads}
        self._lexical_options: dict[str, Any] = {"auto_compact_docs": auto_compact_docs}
        self._vectors = VectorIndex(embedder.dim, **self._vector_options)
        self._lexical = LexicalIndex(**self._lexical_options)
        self._docs = DocTable()
        self._manifest: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._writer_mutex = threading.RLock()
        self._writer_depth = 0
        self._lock_fd: int | None = None

    # -- introspection --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._docs

    @property
    def meta(self) -> dict[str, Any]:
        """The caller's ``meta`` from the last save or load (e.g. ``synced_version``); {} if never saved."""
        return dict(self._manifest.get("meta", {}))

    @property
    def generation(self) -> str | None:
        return self._manifest.get("generation")

    @property
    def vector_index(self) -> VectorIndex:
        return self._vectors

    @property
    def lexical_index(self) -> LexicalIndex:
        return self._lexical

    def ids(self) -> np.ndarray:
        """All document ids, sorted."""
        with self._lock:
            return self._docs.ids.copy()

    # -- writes ---------------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), EMBED_CHUNK):
            chunk = texts[start : start + EMBED_CHUNK]
            vectors = np.asarray(self.embedder.encode(chunk), dtype=np.float32)
            if vectors.shape != (len(chunk), self.embedder.dim):
                raise ValueError(f"embedder returned shape {vectors.shape} for {len(chunk)} texts")
            parts.append(vectors)
        return np.concatenate(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)

    def upsert(self, docs: Sequence[KBDocument], vectors: np.ndarray | None = None) -> None:
        """Add or replace documents; embeds their texts unless ``vectors`` (one row per doc) is given."""
        docs = list(docs)
        if not docs:
            return
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.shape != (len(docs), self.embedder.dim):
                raise ValueError(
                    f"vectors must have shape ({len(docs)}, {self.embedder.dim}), got {vectors.shape}"
                )
        last = list({doc.id: i for i, doc in enumerate(docs)}.values())  # later duplicates win
        docs = [docs[i] for i in last]
        texts = [doc.text for doc in docs]
        vectors = self._embed(texts) if vectors is None else vectors[last]  # embed outside the lock
        ids = np.fromiter((doc.id for doc in docs), dtype=np.int64, count=len(docs))
        with self._lock:
            self._vectors.upsert(ids, vectors)
            self._lexical.upsert(ids, texts)
            self._docs.upsert(
                ids,
                [doc.category for doc in docs],
                [doc.team for doc in docs],
                [doc.resolved_at for doc in docs],
            )

    def remove(self, ids: Iterable[int]) -> int:
        """Remove documents by id (unknown ids are ignored); return how many were removed."""
        ids_arr = np.fromiter((int(i) for i in ids), dtype=np.int64)
        with self._lock:
            removed = self._docs.remove(ids_arr)
            self._vectors.remove(ids_arr)
            self._lexical.remove(ids_arr)
            return removed

    def rebuild(
        self,
        docs_iter: Iterable[KBDocument],
        *,
        total: int | None = None,
        batch_size: int = 256,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Replace the whole index with ``docs_iter`` (embedded in batches); returns the document count.

        The new indexes are built on the side and swapped in at the end, so searches keep working on the
        old ones meanwhile. The vector index kind (flat or IVF) is chosen by the final size. ``total``
        (if known) preallocates the vector buffer; ``progress`` gets the running count after each batch.
        Later duplicates of an id win.
        """
        batches = ((batch, None) for batch in _batched(docs_iter, batch_size))
        return self._rebuild_from(batches, total=total, progress=progress)

    @classmethod
    def build(
        cls,
        embedder: Embedder,
        directory: Path,
        *,
        batches: Iterable[tuple[Sequence[KBDocument], np.ndarray | None]],
        total: int | None = None,
        progress: Callable[[int], None] | None = None,
        **options: Any,
    ) -> KnowledgeBase:
        """A new knowledge base from ``(documents, vectors)`` batches; ``vectors`` may be None to embed
        that batch. For callers that keep embeddings next to the source rows (no re-embedding)."""
        kb = cls(embedder, directory, **options)
        kb._rebuild_from(batches, total=total, progress=progress)
        return kb

    def _rebuild_from(
        self,
        batches: Iterable[tuple[Sequence[KBDocument], np.ndarray | None]],
        *,
        total: int | None,
        progress: Callable[[int], None] | None,
    ) -> int:
        buffer = VectorBuffer(self.embedder.dim, total or 1024)
        id_parts: list[np.ndarray] = []
        lexical = LexicalIndex(**self._lexical_options)
        table = DocTable()
        done = 0
        for docs, given in batches:
            batch = list(docs)
            if not batch:
                continue
            texts = [doc.text for doc in batch]
            vectors = self._embed(texts) if given is None else np.asarray(given, dtype=np.float32)
            if vectors.shape != (len(batch), self.embedder.dim):
                raise ValueError(
                    f"batch vectors have shape {vectors.shape}, expected ({len(batch)}, {self.embedder.dim})"
                )
            ids = np.fromiter((doc.id for doc in batch), dtype=np.int64, count=len(batch))
            buffer.append(vectors)
            id_parts.append(ids)
            lexical.upsert(ids, texts)
            table.upsert(
                ids,
                [doc.category for doc in batch],
                [doc.team for doc in batch],
                [doc.resolved_at for doc in batch],
            )
            done += len(batch)
            if progress is not None:
                progress(done)
        all_ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
        vector_index = VectorIndex(self.embedder.dim, **self._vector_options)
        if all_ids.size:
            vector_index = VectorIndex.build(all_ids, buffer.array(), **self._vector_options)
        lexical.compact()
        with self._lock:
            self._vectors, self._lexical, self._docs = vector_index, lexical, table
        return len(table)

    # -- reads ----------------------------------------------------------------------------------------

    def _query_vector(self, text: str, query_vector: np.ndarray | None) -> np.ndarray:
        if query_vector is None:
            return self._embed([text])
        vector = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        if vector.shape[1] != self.embedder.dim:
            raise ValueError(f"query_vector must have {self.embedder.dim} dimensions, got {vector.shape[1]}")
        return vector

    def _restriction(
        self,
        category: str | None,
        team: str | None,
        resolved_after: float | None,
        exclude_ids: Iterable[int],
    ) -> tuple[np.ndarray | None, set[int]]:
        """Allowed ids for the index searches (None: all) and ids to drop from their results.

        Excluding a few ids (e.g. the ticket being routed) without other filters is done by over-fetching
        and dropping them, which avoids building a selector over the whole collection.
        """
        exclude = {int(i) for i in exclude_ids}
        if category is None and team is None and resolved_after is None:
            return None, exclude
        allowed = self._docs.filter_ids(
            category=category,
            team=team,
            resolved_after=resolved_after,
            exclude_ids=np.fromiter(exclude, np.int64),
        )
        return allowed, exclude

    def search(
        self,
        text: str,
        k: int = 5,
        *,
        category: str | None = None,
        team: str | None = None,
        resolved_after: float | None = None,
        exclude_ids: Iterable[int] = (),
        query_vector: np.ndarray | None = None,
        dense_weight: float | None = None,
        lexical_weight: float | None = None,
    ) -> list[Hit]:
        """Hybrid search: dense and BM25 top-N (N = max(50, 4k)) fused by weighted RRF, best first.

        Filters apply inside both searches. ``query_vector`` skips embedding ``text`` (which is still used
        for BM25). The weights default to the instance's; a weight of 0 disables that signal.
        """
        if k < 1:
            raise ValueError("k must be >= 1")
        dw = self.dense_weight if dense_weight is None else float(dense_weight)
        lw = self.lexical_weight if lexical_weight is None else float(lexical_weight)
        if dw < 0 or lw < 0:
            raise ValueError("weights must be >= 0")
        q = self._query_vector(text, query_vector) if dw > 0 or query_vector is not None else None
        depth = max(MIN_CANDIDATES, 4 * k)
        with self._lock:
            if len(self) == 0:
                return []
            allowed, exclude = self._restriction(category, team, resolved_after, exclude_ids)
            if allowed is not None and allowed.size == 0:
                return []
            fetch = depth + (len(exclude) if allowed is None else 0)
            dense: dict[int, float] = {}
            if dw > 0 and q is not None:
                scores, ids = self._vectors.search(q, fetch, allowed_ids=allowed)
                dense_hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
                dense = dict([hit for hit in dense_hits if hit[0] not in exclude][:depth])
            lexical: dict[int, float] = {}
            if lw > 0 and text:
                lex_hits = self._lexical.search(text, fetch, allowed_ids=allowed)
                lexical = dict([hit for hit in lex_hits if hit[0] not in exclude][:depth])
            fused: dict[int, float] = {}
            for weight, ranked in ((dw, dense), (lw, lexical)):
                for rank, doc_id in enumerate(ranked, start=1):  # dicts keep best-first order
                    fused[doc_id] = fused.get(doc_id, 0.0) + weight / (self.rrf_k + rank)
            top = sorted(fused, key=lambda i: (-fused[i], -dense.get(i, -2.0), i))[:k]
            return self._hits(top, fused, dense, lexical, q, text)

    def _hits(
        self,
        top: list[int],
        fused: dict[int, float],
        dense: dict[int, float],
        lexical: dict[int, float],
        q: np.ndarray | None,
        text: str,
    ) -> list[Hit]:
        """Build hits, filling the cosine / BM25 score that only the other search produced."""
        missing_dense = [i for i in top if i not in dense]
        if q is not None and missing_dense:
            vectors = self._vectors.reconstruct(missing_dense)
            q_unit = q[0] / max(float(np.linalg.norm(q[0])), 1e-12)
            cosines = np.clip(vectors @ q_unit, -1.0, 1.0)
            dense = {**dense, **dict(zip(missing_dense, cosines.tolist(), strict=True))}
        missing_lexical = [i for i in top if i not in lexical]
        if text and missing_lexical:
            bm25 = self._lexical.score_ids(text, missing_lexical)
            lexical = {**lexical, **dict(zip(missing_lexical, bm25.tolist(), strict=True))}
        described = self._docs.describe(top)
        return [
            Hit(
                id=doc_id,
                score=fused[doc_id],
                dense_score=dense.get(doc_id),
                lexical_score=lexical.get(doc_id),
                category=category,
                team=team,
            )
            for doc_id, (category, team) in zip(top, described, strict=True)
        ]

    def search_vector(
        self,
        query_vector: np.ndarray,
        k: int = 5,
        *,
        category: str | None = None,
        team: str | None = None,
        resolved_after: float | None = None,
        exclude_ids: Iterable[int] = (),
    ) -> list[Hit]:
        """Dense-only search for callers that already embedded the text; ``score`` is the cosine."""
        if k < 1:
            raise ValueError("k must be >= 1")
        q = self._query_vector("", query_vector)
        with self._lock:
            if len(self) == 0:
                return []
            allowed, exclude = self._restriction(category, team, resolved_after, exclude_ids)
            if allowed is not None and allowed.size == 0:
                return []
            fetch = k + (len(exclude) if allowed is None else 0)
            scores, ids = self._vectors.search(q, fetch, allowed_ids=allowed)
            return self._dense_hits(ids[0], scores[0], exclude, k)

    def find_near_duplicates(
        self,
        text: str,
        *,
        candidate_ids: Iterable[int],
        threshold: float = 0.92,
        k: int = 5,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """Candidates (e.g. open tickets) whose cosine similarity to ``text`` is >= ``threshold``.

        The search is exact over the candidates, so it does not depend on IVF recall.
        """
        candidates = sorted_unique(candidate_ids)
        if candidates.size == 0:
            return []
        q = self._query_vector(text, query_vector)
        with self._lock:
            scores, ids = self._vectors.search(q, k, allowed_ids=candidates)
            keep = scores[0] >= threshold
            return self._dense_hits(ids[0][keep], scores[0][keep], set(), k)

    def _dense_hits(self, ids: np.ndarray, scores: np.ndarray, exclude: set[int], k: int) -> list[Hit]:
        pairs = [
            (int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0 and int(i) not in exclude
        ]
        pairs = pairs[:k]
        described = self._docs.describe([i for i, _ in pairs])
        return [
            Hit(id=i, score=s, dense_score=s, lexical_score=None, category=c, team=t)
            for (i, s), (c, t) in zip(pairs, described, strict=True)
        ]

    # -- locking and persistence ----------------------------------------------------------------------

    @contextlib.contextmanager
    def writer_lock(self, *, timeout: float | None = None) -> Iterator[None]:
        """Exclusive writer lock across processes (fcntl on ``directory/.lock``); re-entrant per instance.

        Hold it around load-modify-save so two workers never interleave saves. Raises ``TimeoutError``
        if ``timeout`` seconds pass without getting it.
        """
        if not self._writer_mutex.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("timed out waiting for the knowledge base writer lock")
        try:
            if self._writer_depth == 0:
                self._lock_fd = acquire_file_lock(self.directory / LOCK_FILE, timeout)
            self._writer_depth += 1
            try:
                yield
            finally:
                self._writer_depth -= 1
                if self._writer_depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None
        finally:
            self._writer_mutex.release()

    def save(self, meta: dict[str, Any] | None = None) -> str:
        """Write all files (each atomically), then the manifest; returns the new generation id.

        Takes the writer lock if this instance does not hold it yet. ``meta`` must be JSON-serialisable.
        """
        meta = dict(meta or {})
        json.dumps(meta)  # fail before touching any file
        with self.writer_lock(), self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            generation = uuid.uuid4().hex
            file_meta = {"generation": generation, "embedder": self.embedder.name, "dim": self.embedder.dim}
            self._vectors.save(self.directory / VECTORS_FILE, meta=file_meta)
            self._lexical.save(self.directory / LEXICAL_FILE, meta=file_meta)
            self._docs.save(self.directory / DOCS_FILE, meta=file_meta)
            manifest = {
                "format_version": FORMAT_VERSION,
                "generation": generation,
                "embedder": {"name": self.embedder.name, "dim": self.embedder.dim},
                "counts": {"documents": len(self._docs), "vocabulary": self._lexical.vocabulary_size},
                "vector_index": {
                    "kind": self._vectors.kind,
                    "nprobe": self._vectors.nprobe,
                    "nlist": self._vectors.nlist,
                    "calibrated_recall": self._vectors.calibrated_recall,
                },
                "files": [VECTORS_FILE, LEXICAL_FILE, DOCS_FILE],
                "saved_at": time.time(),
                "meta": meta,
            }
            atomic_write_json(self.directory / MANIFEST_FILE, manifest)
            self._manifest = manifest
            return generation

    @classmethod
    def load(cls, embedder: Embedder, directory: Path, **options: Any) -> KnowledgeBase:
        """Load a saved knowledge base; ``options`` are the constructor's keyword arguments.

        Raises ``KnowledgeBaseStale`` (no manifest, another model, files from different saves),
        ``IndexCorrupt`` or ``IndexFormatMismatch``: all ``IndexLoadError``, all fixed by a rebuild.
        """
        directory = Path(directory)
        for _ in range(_LOAD_ATTEMPTS):
            manifest = read_manifest(directory, embedder)
            try:
                return cls._load_files(embedder, directory, manifest, options)
            except GenerationMismatch as exc:
                with contextlib.suppress(KnowledgeBaseStale, IndexCorrupt, IndexFormatMismatch):
                    if read_manifest(directory, embedder)["generation"] != manifest["generation"]:
                        continue  # a writer saved while we were reading: read the new files
                raise KnowledgeBaseStale(str(exc)) from None
        raise KnowledgeBaseStale(f"{directory}: files kept changing while loading")

    @classmethod
    def _load_files(
        cls, embedder: Embedder, directory: Path, manifest: dict[str, Any], options: dict[str, Any]
    ) -> KnowledgeBase:
        kb = cls(embedder, directory, **options)
        paths = [directory / name for name in (VECTORS_FILE, LEXICAL_FILE, DOCS_FILE)]
        missing = [path.name for path in paths if not path.is_file()]
        if missing:
            raise KnowledgeBaseStale(f"{directory}: missing {', '.join(missing)} (incomplete save)")
        vectors, v_header = VectorIndex.load(paths[0], **kb._vector_options)
        lexical, l_header = LexicalIndex.load(paths[1], **kb._lexical_options)
        docs, d_header = DocTable.load(paths[2])
        check_files(
            directory,
            manifest,
            embedder,
            headers=dict(zip(paths, (v_header, l_header, d_header), strict=True)),
            counts=(len(vectors), len(lexical), len(docs)),
            id_sets=(vectors.ids(), lexical.ids(), docs.ids),
            dim=vectors.dim,
        )
        kb._vectors, kb._lexical, kb._docs, kb._manifest = vectors, lexical, docs, manifest
        return kb
