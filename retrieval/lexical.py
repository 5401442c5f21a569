"""An in-memory BM25 index (k1=1.2, b=0.75) that updates incrementally and scales to ~1M short tickets.

Why BM25 next to embeddings: exact tokens such as error codes ("E-4012"), host names or product SKUs carry
most of the meaning of many tickets, and sentence embeddings blur them.

Layout: a *compacted* segment holds most documents as flat NumPy postings in both orientations (doc-major
to update document frequencies on removal, term-major to score queries), with a tombstone mask for
removed or replaced documents. Documents added since the last compaction live in a small dict-based
*delta*. Searches merge both. ``compact()`` folds the delta in and drops tombstones; it runs automatically
once the delta holds ``auto_compact_docs`` documents. Document frequencies, the document count and the
total length are updated on every change, so scores never depend on when compaction last ran.

SciPy is imported lazily, in ``compact()`` only.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._arrays import as_ids, sorted_unique
from retrieval._storage import read_container, write_container
from retrieval.errors import IndexCorrupt

FORMAT_VERSION = 1
MAGIC = b"SWBLEX01"
DEFAULT_AUTO_COMPACT_DOCS = 20_000
MAX_TEXT_CHARS = 20_000
"""Only the start of a text is indexed or used as a query: pasted logs add time, not relevance."""
DEFAULT_MAX_QUERY_TERMS = 48
"""A whole ticket used as a query can have hundreds of terms; scoring only the rarest (highest idf) ones
keeps search time bounded at 1M documents while dropping terms that barely move the ranking."""
_MAX_TF = np.iinfo(np.uint16).max

_TOKEN_RE = re.compile(r"\w+")
# fmt: off
STOPWORDS = frozenset({
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because",
    "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from",
    "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "of",
    "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she",
    "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we",
    "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours",
})
# fmt: on


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (unicode letters, digits, underscore), without 1-char tokens and stopwords.

    "Error E-4012 on VPN" -> ["error", "4012", "vpn"].
    """
    return [tok for tok in _TOKEN_RE.findall(text.lower()) if len(tok) > 1 and tok not in STOPWORDS]


def _range_indices(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices into a CSR-style data array for the given rows (concatenated), and each row's length."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), lengths
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    return offsets, lengths


class LexicalIndex:
    """BM25 over int64 document ids. Not thread-safe: the caller serialises writes against reads."""

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        auto_compact_docs: int = DEFAULT_AUTO_COMPACT_DOCS,
        max_query_terms: int = DEFAULT_MAX_QUERY_TERMS,
    ) -> None:
        self.k1 = k1
        self.b = b
        self.auto_compact_docs = auto_compact_docs
        self.max_query_terms = max_query_terms
        self._vocab: dict[str, int] = {}
        self._df = np.zeros(1024, dtype=np.int64)
        self._n_docs = 0
        self._total_len = 0
        # Compacted segment (position = row).
        self._c_ids = np.zeros(0, dtype=np.int64)
        self._c_len = np.zeros(0, dtype=np.int32)
        self._c_alive = np.zeros(0, dtype=bool)
        self._c_sorted_ids = np.zeros(0, dtype=np.int64)
        self._c_sorted_pos = np.zeros(0, dtype=np.int64)
        self._c_doc_indptr = np.zeros(1, dtype=np.int64)
        self._c_doc_terms = np.zeros(0, dtype=np.int32)
        self._c_doc_tf = np.zeros(0, dtype=np.uint16)
        self._c_term_indptr = np.zeros(1, dtype=np.int64)
        self._c_term_docs = np.zeros(0, dtype=np.int32)
        self._c_term_tf = np.zeros(0, dtype=np.uint16)
        self._c_dead = 0
        # Delta: id -> ({term id: tf}, length) and term id -> {id: tf}.
        self._d_docs: dict[int, tuple[dict[int, int], int]] = {}
        self._d_postings: dict[int, dict[int, int]] = {}

    # -- bookkeeping ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_docs

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, int | np.integer):
            return False
        return int(doc_id) in self._d_docs or bool(
            self._positions(np.array([doc_id], dtype=np.int64))[0] >= 0
        )

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocab)

    @property
    def delta_size(self) -> int:
        """Documents added since the last compaction."""
        return len(self._d_docs)

    @property
    def average_length(self) -> float:
        return self._total_len / self._n_docs if self._n_docs else 0.0

    def document_frequency(self, term: str) -> int:
        """Live documents containing ``term`` (a token as produced by ``tokenize``)."""
        tid = self._vocab.get(term)
        return 0 if tid is None else int(self._df[tid])

    def ids(self) -> np.ndarray:
        """All live document ids, sorted."""
        live = self._c_ids[self._c_alive]
        delta = np.fromiter(self._d_docs, dtype=np.int64, count=len(self._d_docs))
        return np.sort(np.concatenate([live, delta]))

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id in the compacted segment, -1 when absent or tombstoned."""
        out = np.full(ids.shape, -1, dtype=np.int64)
        if self._c_sorted_ids.size == 0 or ids.size == 0:
            return out
        j = np.searchsorted(self._c_sorted_ids, ids)
        j[j == self._c_sorted_ids.size] = 0
        match = self._c_sorted_ids[j] == ids
        out[match] = self._c_sorted_pos[j[match]]
        found = out >= 0
        out[found & ~self._c_alive[np.where(found, out, 0)]] = -1
        return out

    def _term_id(self, term: str) -> int:
        tid = self._vocab.get(term)
        if tid is None:
            tid = len(self._vocab)
            self._vocab[term] = tid
            if tid >= self._df.size:
                self._df = np.concatenate([self._df, np.zeros(self._df.size, dtype=np.int64)])
        return tid

    # -- updates --------------------------------------------------------------------------------------

    def upsert(self, ids: Any, texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids``; an existing id is replaced. Later duplicates in one call win."""
        ids_arr = as_ids(ids)
        if ids_arr.size != len(texts):
            raise ValueError(f"{ids_arr.size} ids for {len(texts)} texts")
        latest = dict(zip(ids_arr.tolist(), texts, strict=True))
        self.remove(np.fromiter(latest, dtype=np.int64, count=len(latest)))
        new_terms: list[int] = []
        for doc_id, text in latest.items():
            counts = Counter(tokenize(text[:MAX_TEXT_CHARS]))
            terms = {self._term_id(tok): min(tf, _MAX_TF) for tok, tf in counts.items()}
            length = sum(counts.values())
            self._d_docs[doc_id] = (terms, length)
            for tid, tf in terms.items():
                self._d_postings.setdefault(tid, {})[doc_id] = tf
            new_terms.extend(terms)
            self._total_len += length
        self._n_docs += len(latest)
        if new_terms:
            np.add.at(self._df, np.asarray(new_terms, dtype=np.int64), 1)
        if len(self._d_docs) >= self.auto_compact_docs:
            self.compact()

    def remove(self, ids: Any) -> int:
        """Remove documents (unknown ids are ignored); return how many were removed."""
        ids_arr = sorted_unique(ids)
        removed = 0
        freed_terms: list[int] = []
        for doc_id in ids_arr.tolist():
            entry = self._d_docs.pop(doc_id, None)
            if entry is None:
                continue
            terms, length = entry
            for tid in terms:
                postings = self._d_postings[tid]
                del postings[doc_id]
                if not postings:
                    del self._d_postings[tid]
            freed_terms.extend(terms)
            self._total_len -= length
            removed += 1
        if freed_terms:
            np.add.at(self._df, np.asarray(freed_terms, dtype=np.int64), -1)
        pos = self._positions(ids_arr)
        pos = pos[pos >= 0]
        if pos.size:
            self._c_alive[pos] = False
            sel, _ = _range_indices(self._c_doc_indptr, pos)
            np.add.at(self._df, self._c_doc_terms[sel].astype(np.int64), -1)
            self._total_len -= int(self._c_len[pos].sum())
            self._c_dead += int(pos.size)
            removed += int(pos.size)
        self._n_docs -= removed
        return removed

    def compact(self) -> None:
        """Fold the delta into the compacted segment and drop tombstones (O(postings), ~1 s at 1M docs)."""
        if not self._d_docs and self._c_dead == 0:
            return
        import scipy.sparse as sp

        keep = np.flatnonzero(self._c_alive)
        sel, old_row_nnz = _range_indices(self._c_doc_indptr, keep)
        delta = list(self._d_docs.items())
        n_delta = len(delta)
        d_ids = np.fromiter((doc_id for doc_id, _ in delta), dtype=np.int64, count=n_delta)
        d_len = np.fromiter((length for _, (_, length) in delta), dtype=np.int32, count=n_delta)
        d_row_nnz = np.fromiter((len(terms) for _, (terms, _) in delta), dtype=np.int64, count=n_delta)
        d_terms = np.fromiter(chain.from_iterable(terms for _, (terms, _) in delta), dtype=np.int32)
        d_tf = np.fromiter(chain.from_iterable(terms.values() for _, (terms, _) in delta), dtype=np.uint16)

        ids = np.concatenate([self._c_ids[keep], d_ids])
        lengths = np.concatenate([self._c_len[keep], d_len])
        row_nnz = np.concatenate([old_row_nnz, d_row_nnz])
        indptr = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(row_nnz, out=indptr[1:])
        terms = np.concatenate([self._c_doc_terms[sel], d_terms])
        tfs = np.concatenate([self._c_doc_tf[sel], d_tf])
        by_term = sp.csr_matrix((tfs, terms, indptr), shape=(ids.size, len(self._vocab))).tocsc()
        by_term.sort_indices()
        self._set_compacted(ids, lengths, indptr, terms, tfs, by_term)
        self._d_docs.clear()
        self._d_postings.clear()

    def _set_compacted(
        self,
        ids: np.ndarray,
        lengths: np.ndarray,
        doc_indptr: np.ndarray,
        doc_terms: np.ndarray,
        doc_tf: np.ndarray,
        by_term: Any,
    ) -> None:
        self._c_ids = ids
        self._c_len = lengths.astype(np.int32, copy=False)
        self._c_alive = np.ones(ids.size, dtype=bool)
        order = np.argsort(ids, kind="stable")
        self._c_sorted_ids = ids[order]
        self._c_sorted_pos = order.astype(np.int64)
        self._c_doc_indptr = doc_indptr.astype(np.int64, copy=False)
        self._c_doc_terms = doc_terms.astype(np.int32, copy=False)
        self._c_doc_tf = doc_tf.astype(np.uint16, copy=False)
        self._c_term_indptr = by_term.indptr.astype(np.int64)
        self._c_term_docs = by_term.indices.astype(np.int32)
        self._c_term_tf = by_term.data.astype(np.uint16)
        self._c_dead = 0

    # -- queries --------------------------------------------------------------------------------------

    def _query_terms(self, query_text: str) -> tuple[np.ndarray, np.ndarray]:
        """Query term ids with live documents and their idf (Lucene's variant, always > 0), keeping the
        ``max_query_terms`` rarest terms."""
        tokens = tokenize(query_text[:MAX_TEXT_CHARS])
        tids = {tid for tok in tokens if (tid := self._vocab.get(tok)) is not None}
        arr = np.asarray(sorted(t for t in tids if self._df[t] > 0), dtype=np.int64)
        df = self._df[arr]
        if arr.size > self.max_query_terms:
            keep = np.sort(np.argsort(df, kind="stable")[: self.max_query_terms])
            arr, df = arr[keep], df[keep]
        idf = np.log1p((self._n_docs - df + 0.5) / (df + 0.5))
        return arr, idf

    def _term_weight(self, tf: np.ndarray | float, length: np.ndarray | float, avgdl: float) -> Any:
        return tf * (self.k1 + 1.0) / (tf + self.k1 * (1.0 - self.b + self.b * length / avgdl))

    def _avgdl(self) -> float:
        return max(self._total_len / self._n_docs, 1e-9) if self._n_docs else 1.0

    def _score_compacted(
        self, tids: np.ndarray, idf: np.ndarray, avgdl: float, row_mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of live compacted documents matching any term (restricted to ``row_mask`` if given)."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        in_segment = tids < self._c_term_indptr.size - 1
        if not in_segment.any() or self._c_ids.size == 0:
            return empty
        sel, lengths = _range_indices(self._c_term_indptr, tids[in_segment])
        weights = np.repeat(idf[in_segment], lengths)
        pos = self._c_term_docs[sel]
        keep = self._c_alive[pos] if row_mask is None else row_mask[pos]
        if not keep.all():
            sel, pos, weights = sel[keep], pos[keep], weights[keep]
        if sel.size == 0:
            return empty
        tf = self._c_term_tf[sel].astype(np.float64)
        contrib = weights * self._term_weight(tf, self._c_len[pos], avgdl)
        if pos.size * 8 < self._c_ids.size:  # few postings: sort them rather than touch every document
            rows, inverse = np.unique(pos, return_inverse=True)
            scores = np.bincount(inverse, weights=contrib)
        else:
            dense = np.bincount(pos, weights=contrib, minlength=self._c_ids.size)
            rows = np.flatnonzero(dense)
            scores = dense[rows]
        return self._c_ids[rows], scores

    def _score_delta(self, tids: np.ndarray, idf: np.ndarray, avgdl: float) -> tuple[np.ndarray, np.ndarray]:
        acc: dict[int, float] = {}
        for tid, weight in zip(tids.tolist(), idf.tolist(), strict=True):
            for doc_id, tf in self._d_postings.get(tid, {}).items():
                length = self._d_docs[doc_id][1]
                acc[doc_id] = acc.get(doc_id, 0.0) + weight * self._term_weight(tf, length, avgdl)
        ids = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
        return ids, np.fromiter(acc.values(), dtype=np.float64, count=len(acc))

    def search(self, query_text: str, k: int, *, allowed_ids: Any = None) -> list[tuple[int, float]]:
        """Top-``k`` ``(id, bm25)`` pairs with a positive score, best first (ties by id).

        ``allowed_ids`` restricts results to those ids; an empty array gives no results.
        """
        if k < 1:
            raise ValueError("k must be >= 1")
        tids, idf = self._query_terms(query_text)
        if tids.size == 0 or self._n_docs == 0:
            return []
        avgdl = self._avgdl()
        row_mask = None
        allowed = None
        if allowed_ids is not None:
            allowed = sorted_unique(allowed_ids)
            if allowed.size == 0:
                return []
            row_mask = np.zeros(self._c_ids.size, dtype=bool)  # allowed and live compacted rows
            positions = self._positions(allowed)
            row_mask[positions[positions >= 0]] = True
        c_ids, c_scores = self._score_compacted(tids, idf, avgdl, row_mask)
        d_ids, d_scores = self._score_delta(tids, idf, avgdl)
        if allowed is not None and d_ids.size:
            j = np.minimum(np.searchsorted(allowed, d_ids), allowed.size - 1)
            keep = allowed[j] == d_ids
            d_ids, d_scores = d_ids[keep], d_scores[keep]
        ids = np.concatenate([c_ids, d_ids])
        scores = np.concatenate([c_scores, d_scores])
        if ids.size > k:
            top = np.argpartition(-scores, k - 1)[:k]
            ids, scores = ids[top], scores[top]
        order = np.lexsort((ids, -scores))
        return [(int(i), float(s)) for i, s in zip(ids[order], scores[order], strict=True)]

    def score_ids(self, query_text: str, ids: Any) -> np.ndarray:
        """BM25 of ``query_text`` for each of ``ids`` (0.0 for no match or unknown id)."""
        ids_arr = as_ids(ids)
        out = np.zeros(ids_arr.size, dtype=np.float64)
        tids, idf = self._query_terms(query_text)
        if tids.size == 0 or ids_arr.size == 0:
            return out
        avgdl = self._avgdl()
        pos = self._positions(ids_arr)
        rows = np.flatnonzero(pos >= 0)
        n_terms_compacted = self._c_term_indptr.size - 1
        for tid, weight in zip(tids.tolist(), idf.tolist(), strict=True):
            if tid < n_terms_compacted and rows.size:
                start, end = self._c_term_indptr[tid], self._c_term_indptr[tid + 1]
                docs = self._c_term_docs[start:end]
                j = np.searchsorted(docs, pos[rows])
                j_safe = np.minimum(j, max(docs.size - 1, 0))
                hit = (
                    (j < docs.size) & (docs[j_safe] == pos[rows]) if docs.size else np.zeros(rows.size, bool)
                )
                if hit.any():
                    tf = self._c_term_tf[start:end][j[hit]].astype(np.float64)
                    out[rows[hit]] += weight * self._term_weight(tf, self._c_len[pos[rows[hit]]], avgdl)
        for i, doc_id in enumerate(ids_arr.tolist()):
            entry = self._d_docs.get(doc_id)
            if entry is None:
                continue
            terms, length = entry
            for tid, weight in zip(tids.tolist(), idf.tolist(), strict=True):
                tf = terms.get(tid)
                if tf:
                    out[i] += weight * self._term_weight(tf, length, avgdl)
        return out

    # -- bulk and persistence -------------------------------------------------------------------------

    @classmethod
    def build(cls, docs: Iterable[tuple[int, str]], **options: Any) -> LexicalIndex:
        """Index ``(id, text)`` pairs from scratch; compacts as it goes, so memory stays bounded."""
        index = cls(**options)
        batch_ids: list[int] = []
        batch_texts: list[str] = []
        for doc_id, text in docs:
            batch_ids.append(doc_id)
            batch_texts.append(text)
            if len(batch_ids) >= 4096:
                index.upsert(batch_ids, batch_texts)
                batch_ids, batch_texts = [], []
        index.upsert(batch_ids, batch_texts)
        index.compact()
        return index

    def save(self, path: Path, *, meta: dict[str, Any] | None = None) -> None:
        """Compact, then atomically write the index to one file (container header + npz payload)."""
        self.compact()
        vocab_bytes = "\n".join(self._vocab).encode("utf-8")
        buffer = io.BytesIO()
        np.savez(
            buffer,
            ids=self._c_ids,
            lengths=self._c_len,
            doc_indptr=self._c_doc_indptr,
            doc_terms=self._c_doc_terms,
            doc_tf=self._c_doc_tf,
            vocab=np.frombuffer(vocab_bytes, dtype=np.uint8),
        )
        header = {
            "format_version": FORMAT_VERSION,
            "k1": self.k1,
            "b": self.b,
            "count": self._n_docs,
            "vocab_size": len(self._vocab),
            "nnz": int(self._c_doc_terms.size),
            "meta": meta or {},
        }
        write_container(Path(path), MAGIC, header, buffer.getbuffer())

    @classmethod
    def load(cls, path: Path, **options: Any) -> tuple[LexicalIndex, dict[str, Any]]:
        """Read an index written by ``save``; return it with its header (``header["meta"]``).

        Raises ``IndexCorrupt`` or ``IndexFormatMismatch`` (both ``IndexLoadError``).
        """
        header, payload = read_container(Path(path), MAGIC, format_version=FORMAT_VERSION)
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                arrays = {
                    name: npz[name]
                    for name in ("ids", "lengths", "doc_indptr", "doc_terms", "doc_tf", "vocab")
                }
            count, vocab_size = int(header["count"]), int(header["vocab_size"])
            index = cls(k1=float(header["k1"]), b=float(header["b"]), **options)
            terms = arrays["vocab"].tobytes().decode("utf-8").split("\n") if vocab_size else []
        except (KeyError, TypeError, ValueError, OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise IndexCorrupt(f"{path}: cannot read lexical index: {exc}") from exc
        index._load_arrays(path, arrays, terms, count, vocab_size)
        return index, header

    def _load_arrays(
        self, path: Path, arrays: dict[str, np.ndarray], terms: list[str], count: int, vocab_size: int
    ) -> None:
        import scipy.sparse as sp

        ids, lengths = arrays["ids"].astype(np.int64), arrays["lengths"].astype(np.int32)
        indptr, doc_terms, doc_tf = arrays["doc_indptr"], arrays["doc_terms"], arrays["doc_tf"]
        problems = []
        if len(terms) != vocab_size or len(set(terms)) != vocab_size:
            problems.append("vocabulary size")
        if ids.shape != (count,) or lengths.shape != (count,) or sorted_unique(ids).size != count:
            problems.append("document ids")
        if indptr.shape != (count + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            problems.append("row pointers")
        elif indptr[-1] != doc_terms.size or doc_tf.shape != doc_terms.shape:
            problems.append("postings length")
        elif doc_terms.size and (doc_terms.min() < 0 or doc_terms.max() >= vocab_size):
            problems.append("term ids")
        if problems:
            raise IndexCorrupt(f"{path}: inconsistent lexical index ({', '.join(problems)})")
        self._vocab = {term: tid for tid, term in enumerate(terms)}
        by_term = sp.csr_matrix(
            (doc_tf.astype(np.uint16), doc_terms.astype(np.int32), indptr.astype(np.int64)),
            shape=(count, vocab_size),
        ).tocsc()
        by_term.sort_indices()
        self._set_compacted(ids, lengths, indptr, doc_terms, doc_tf, by_term)
        self._df = np.zeros(max(1024, 2 ** math.ceil(math.log2(vocab_size + 1))), dtype=np.int64)
        self._df[:vocab_size] = np.diff(self._c_term_indptr)
        self._n_docs = count
        self._total_len = int(lengths.sum())
