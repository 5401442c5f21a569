"""LexicalIndex: tokenising, BM25 scores against a straightforward reference, incremental updates, disk."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import IndexCorrupt, IndexFormatMismatch
from retrieval.lexical import LexicalIndex, tokenize

WORDS = [f"w{i}" for i in range(60)] + ["vpn", "printer", "password", "4012", "outlook", "badge"]


def reference_bm25(docs: dict[int, str], query: str, k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    """Textbook BM25 (Lucene idf) over the live documents, recomputed from scratch."""
    tokenized = {doc_id: tokenize(text) for doc_id, text in docs.items()}
    n = len(tokenized)
    avgdl = sum(len(t) for t in tokenized.values()) / n
    df = Counter(term for tokens in tokenized.values() for term in set(tokens))
    scores: dict[int, float] = {}
    for doc_id, tokens in tokenized.items():
        tf = Counter(tokens)
        score = 0.0
        for term in set(tokenize(query)):
            if tf[term]:
                idf = math.log1p((n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(tokens) / avgdl))
        if score > 0:
            scores[doc_id] = score
    return scores


def random_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))


def test_tokenize() -> None:
    assert tokenize("The VPN drops: error E-4012 (again)!") == ["vpn", "drops", "error", "4012", "again"]
    assert tokenize("Überweisung fehlgeschlagen, Konto_7") == ["überweisung", "fehlgeschlagen", "konto_7"]
    assert tokenize("a I to") == []


def test_search_ranks_and_filters() -> None:
    index = LexicalIndex()
    index.upsert(
        [1, 2, 3, 4],
        [
            "VPN disconnects every hour",
            "Printer jammed on floor three",
            "VPN client shows error E-4012",
            "Outlook asks for the password again",
        ],
    )
    hits = index.search("vpn error 4012", 10)
    assert [doc_id for doc_id, _ in hits] == [3, 1]
    assert all(score > 0 for _, score in hits)
    [(only_id, only_score)] = index.search("vpn", 10, allowed_ids=np.array([1, 2]))
    assert only_id == 1
    assert only_score == pytest.approx(hits[1][1])
    assert index.search("vpn", 10, allowed_ids=np.array([], dtype=np.int64)) == []
    assert index.search("nothing matches", 10) == []
    assert index.search("vpn error", 1)[0][0] == 3


def test_incremental_updates_match_a_fresh_index() -> None:
    """Upserts, replacements, removals and compactions give exactly the scores of a from-scratch index."""
    rng = random.Random(0)
    index = LexicalIndex(auto_compact_docs=7)  # compact often so both segments and tombstones are used
    live: dict[int, str] = {}
    for step in range(300):
        action = rng.random()
        if action < 0.6 or not live:
            batch = {rng.randrange(200): random_text(rng) for _ in range(rng.randint(1, 4))}
            index.upsert(list(batch), list(batch.values()))
            live.update(batch)
        else:
            gone = rng.sample(sorted(live), min(len(live), rng.randint(1, 3)))
            assert index.remove([*gone, 10_000]) == len(gone)
            for doc_id in gone:
                del live[doc_id]
        if step % 25 == 0:
            query = f"{rng.choice(WORDS)} {rng.choice(WORDS)} password"
            expected = reference_bm25(live, query)
            got = dict(index.search(query, 1_000))
            assert got.keys() == expected.keys()
            for doc_id, score in expected.items():
                assert got[doc_id] == pytest.approx(score, rel=1e-9)
            ids = sorted(live)
            np.testing.assert_allclose(index.score_ids(query, ids), [expected.get(i, 0.0) for i in ids])
    assert len(index) == len(live)
    np.testing.assert_array_equal(index.ids(), sorted(live))
    assert index.document_frequency("password") == sum("password" in tokenize(t) for t in live.values())


def test_replacing_a_document_changes_what_it_matches() -> None:
    index = LexicalIndex()
    index.upsert([1, 2], ["printer jammed", "badge reader broken"])
    index.compact()
    index.upsert([1], ["outlook crashes"])
    assert index.search("printer", 5) == []
    assert [i for i, _ in index.search("outlook", 5)] == [1]
    assert len(index) == 2 and 1 in index and 3 not in index
    assert index.document_frequency("printer") == 0


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = random.Random(1)
    index = LexicalIndex(auto_compact_docs=50)
    texts = {i: random_text(rng) for i in range(120)}
    index.upsert(list(texts), list(texts.values()))
    index.remove([5, 6])
    path = tmp_path / "lexical.idx"
    index.save(path, meta={"generation": "g1"})
    loaded, header = LexicalIndex.load(path)
    assert header["meta"] == {"generation": "g1"} and header["count"] == 118
    assert len(loaded) == 118 and 5 not in loaded
    for query in ("vpn password", "w1 w2 w3", "badge"):
        assert loaded.search(query, 20) == index.search(query, 20)
    loaded.upsert([5], ["vpn vpn vpn"])
    assert loaded.search("vpn", 1)[0][0] == 5


def test_corrupt_and_mismatched_files(tmp_path: Path) -> None:
    path = tmp_path / "lexical.idx"
    index = LexicalIndex()
    index.upsert([1, 2], ["vpn down", "printer jammed"])
    index.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(IndexCorrupt):
        LexicalIndex.load(path)
    path.write_bytes(b"SWBIDX01" + data[8:])  # a vector index magic is not a lexical index
    with pytest.raises(IndexCorrupt, match="magic"):
        LexicalIndex.load(path)
    path.write_bytes(data.replace(b'"format_version": 1', b'"format_version": 7'))
    with pytest.raises(IndexFormatMismatch):
        LexicalIndex.load(path)


def test_long_queries_keep_only_the_rarest_terms() -> None:
    docs = {1: "printer vpn", 2: "printer badge", 3: "printer outlook", 4: "vpn outlook"}
    index = LexicalIndex(max_query_terms=2)
    index.upsert(list(docs), list(docs.values()))
    # "printer" (3 docs) is the most common term, so only "badge" and "vpn" are scored
    expected = reference_bm25(docs, "badge vpn")
    got = dict(index.search("printer badge vpn", 10))
    assert got == pytest.approx(expected)
    assert 3 not in got
