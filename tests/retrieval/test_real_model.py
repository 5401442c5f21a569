"""The real packaged all-MiniLM-L6-v2 (offline, CPU, one thread): slower, about 10 s."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from retrieval.embeddings import Embedder, get_embedder
from retrieval.knowledge_base import KBDocument, KnowledgeBase

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder("all-MiniLM-L6-v2", threads=1)


def test_vectors_are_384_d_unit_float32(embedder: Embedder) -> None:
    vectors = embedder.encode(["Printer is jammed", "VPN keeps dropping", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_paraphrase_ranks_above_unrelated_text(embedder: Embedder) -> None:
    query, paraphrase, unrelated = embedder.encode(
        [
            "I can't log in to my account",
            "Unable to sign into my profile",
            "The coffee machine on the third floor is leaking",
        ]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.2


def test_very_long_text_is_cut_and_fast(embedder: Embedder) -> None:
    start = time.perf_counter()
    (vector,) = embedder.encode(["error while syncing mailbox " * 20_000])
    assert time.perf_counter() - start < 5.0
    assert np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_knowledge_base_finds_the_right_past_ticket(embedder: Embedder, tmp_path: Path) -> None:
    past = [
        KBDocument(
            101, "Outlook keeps asking for my password after the Windows update", "email", "messaging"
        ),
        KBDocument(102, "Printer on floor 2 shows paper jam error", "hardware", "desk"),
        KBDocument(103, "VPN connection drops every few minutes when working from home", "network", "netops"),
        KBDocument(104, "Need access to the finance shared drive", "access", "identity"),
        KBDocument(105, "Laptop battery drains very fast", "hardware", "desk"),
        KBDocument(106, "Payroll portal shows the wrong salary amount", "hr", "payroll"),
        KBDocument(107, "Cannot join Teams meetings, microphone not detected", "collaboration", "desk"),
        KBDocument(108, "Badge does not open the parking garage gate", "facilities", "security"),
    ]
    kb = KnowledgeBase(embedder, tmp_path / "kb")
    kb.upsert(past)
    cases = {
        "My remote connection to the company network keeps disconnecting": 103,
        "The printer upstairs is jammed again": 102,
        "Mail client prompts for credentials over and over": 101,
        "My notebook's battery is empty after an hour": 105,
    }
    for text, expected in cases.items():
        hits = kb.search(text, 3)
        assert hits[0].id == expected, (text, hits)
        dense_only = kb.search(text, 1, lexical_weight=0.0)
        assert dense_only[0].id == expected
        assert hits[0].dense_score is not None and hits[0].dense_score > 0.3
    kb.save({"synced_version": 8})
    loaded = KnowledgeBase.load(embedder, kb.directory)
    assert loaded.search("printer jammed", 1)[0].id == 102
