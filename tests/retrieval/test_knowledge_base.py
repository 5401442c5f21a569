"""KnowledgeBase with a small deterministic fake embedder and the real FAISS."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import IndexCorrupt, IndexFormatMismatch, IndexLoadError, KnowledgeBaseStale
from retrieval.kb_files import DOCS_FILE, LEXICAL_FILE, LOCK_FILE, MANIFEST_FILE, VECTORS_FILE
from retrieval.knowledge_base import Hit, KBDocument, KnowledgeBase
from retrieval.lexical import LexicalIndex

REPO = Path(__file__).resolve().parents[2]

# Words the fake "semantic" model treats as the same concept: what lets dense retrieval match paraphrases.
CONCEPTS = {
    "unable": "cannot",
    "cant": "cannot",
    "login": "signin",
    "log": "signin",
    "sign": "signin",
    "profile": "account",
    "laptop": "computer",
    "notebook": "computer",
}
FILLER = {"to", "the", "in", "on", "my", "a", "is", "into", "of", "for", "with", "again", "every"}


class HashEmbedder:
    """Bag of concepts hashed into 64 signed dimensions, L2-normalised. Like many sentence embedders it is
    blind to digits, so it cannot tell error E-4012 from E-5100: that is BM25's job."""

    def __init__(self, name: str = "fake-hash", dim: int = 64) -> None:
        self.name = name
        self.dim = dim
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in FILLER:
                    continue
                h = zlib.crc32(CONCEPTS.get(word, word).encode())
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0:
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out


DOCS = [
    KBDocument(
        1, "Checkout fails with error E-4012 on the payment page during the flash sale", "billing", "payments"
    ),
    KBDocument(2, "Checkout fails with error E-5100 on the payment page", "billing", "payments", 1_000.0),
    KBDocument(3, "Checkout fails with error E-7731 on the payment page", "billing", "payments", 2_000.0),
    KBDocument(4, "Unable to sign in to the account after reset", "access", "identity", 3_000.0),
    KBDocument(5, "Printer on floor three is jammed", "hardware", "desk", 4_000.0),
    KBDocument(6, "VPN disconnects every hour", "network", "netops", 5_000.0),
    KBDocument(7, "Request for a new laptop charger", "hardware", "desk", 6_000.0),
    KBDocument(8, "Email attachments bounce back", "email", "messaging", 7_000.0),
    KBDocument(9, "Account currency wrong", "billing", "finance", 8_000.0),
]


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    knowledge_base = KnowledgeBase(HashEmbedder(), tmp_path / "kb")
    knowledge_base.upsert(DOCS)
    return knowledge_base


def ids(hits: list[Hit]) -> list[int]:
    return [hit.id for hit in hits]


def reciprocal_rank(hits: list[Hit], wanted: int) -> float:
    return next((1.0 / rank for rank, hit in enumerate(hits, start=1) if hit.id == wanted), 0.0)


def test_upsert_replace_remove(kb: KnowledgeBase) -> None:
    assert len(kb) == 9 and 4 in kb and 42 not in kb
    kb.upsert([KBDocument(42, "Badge reader at the door is broken", "facilities", "desk")])
    assert ids(kb.search("badge reader broken", 1)) == [42]

    kb.upsert([KBDocument(42, "Coffee machine leaks water", "facilities", "kitchen")])  # same id replaces
    assert len(kb) == 10
    hit = kb.search("coffee machine leaking", 1)[0]
    assert (hit.id, hit.team) == (42, "kitchen")
    np.testing.assert_allclose(
        kb.vector_index.reconstruct([42])[0], kb.embedder.encode(["Coffee machine leaks water"])[0], atol=1e-6
    )
    assert kb.lexical_index.search("badge", 5) == []

    assert kb.remove([42, 999]) == 1
    assert 42 not in kb and len(kb) == 9
    assert 42 not in ids(kb.search("coffee machine leaks water", 9))


def test_upsert_with_given_vectors_does_not_embed(kb: KnowledgeBase) -> None:
    embedder = kb.embedder
    assert isinstance(embedder, HashEmbedder)
    calls = len(embedder.calls)
    vector = embedder.encode(["VPN disconnects every hour"])
    kb.upsert([KBDocument(50, "zzz qqq")], vectors=vector)
    assert len(embedder.calls) == calls + 1  # only the encode call above
    hits = kb.search("", 2, query_vector=vector[0], lexical_weight=0.0)
    assert set(ids(hits)) == {6, 50}
    with pytest.raises(ValueError, match="shape"):
        kb.upsert([KBDocument(51, "x")], vectors=np.zeros((1, 3)))


def test_hybrid_wins_when_the_error_code_matters(kb: KnowledgeBase) -> None:
    query = "Seeing E-4012 again"
    dense = kb.search(query, 3, lexical_weight=0.0)
    lexical = kb.search(query, 3, dense_weight=0.0)
    hybrid = kb.search(query, 3)
    assert reciprocal_rank(dense, 1) < 1.0  # the embedder cannot see the code
    assert reciprocal_rank(hybrid, 1) == 1.0 >= reciprocal_rank(lexical, 1)
    top = hybrid[0]
    assert top.lexical_score is not None and top.lexical_score > 0
    assert top.dense_score is not None and -1.0 <= top.dense_score <= 1.0
    assert top.score == pytest.approx(
        1 / 61 + 1 / (60 + ids(dense).index(1) + 1) if 1 in ids(dense) else 1 / 61
    )


def test_hybrid_wins_when_the_paraphrase_matters(kb: KnowledgeBase) -> None:
    query = "Cannot login to my account"
    dense = kb.search(query, 3, lexical_weight=0.0)
    lexical = kb.search(query, 3, dense_weight=0.0)
    hybrid = kb.search(query, 3)
    assert reciprocal_rank(lexical, 4) < 1.0  # BM25 prefers the shorter "account currency" ticket
    assert reciprocal_rank(hybrid, 4) == 1.0 >= reciprocal_rank(dense, 4)


def test_filters(kb: KnowledgeBase) -> None:
    query = "checkout payment error"
    assert set(ids(kb.search(query, 10, category="billing"))) <= {1, 2, 3, 9}
    assert set(ids(kb.search(query, 10, team="payments"))) == {1, 2, 3}
    assert set(ids(kb.search(query, 10, team="payments", resolved_after=1_500.0))) == {3}  # 1 is unresolved
    assert kb.search(query, 10, category="no-such-category") == []
    assert 2 not in ids(kb.search(query, 10, exclude_ids=[2]))
    assert set(ids(kb.search(query, 10, team="payments", exclude_ids={1, 3}))) == {2}
    hits = kb.search(query, 10, resolved_after=4_500.0)
    assert hits and all(hit.id in {6, 7, 8, 9} for hit in hits)
    assert all(hit.category == "billing" for hit in kb.search(query, 10, category="billing"))
    assert set(
        ids(kb.search_vector(kb.embedder.encode([query])[0], 10, team="payments", exclude_ids=[3]))
    ) == {
        1,
        2,
    }


def test_exclude_ids_still_returns_k_results(kb: KnowledgeBase) -> None:
    hits = kb.search("checkout payment", 5, exclude_ids=[1, 2, 3])
    assert len(hits) == 5 and not {1, 2, 3} & set(ids(hits))


def test_find_near_duplicates(kb: KnowledgeBase) -> None:
    text = "Checkout fails with error E-9999 on the payment page"
    hits = kb.find_near_duplicates(text, candidate_ids=[2, 3, 5, 7, 1234])
    assert set(ids(hits)) == {2, 3}  # identical to the fake model; 5 and 7 are other topics
    assert all(hit.dense_score is not None and hit.dense_score >= 0.92 for hit in hits)
    assert kb.find_near_duplicates(text, candidate_ids=[5, 7]) == []
    assert kb.find_near_duplicates(text, candidate_ids=[]) == []


def test_save_and_load_round_trip(kb: KnowledgeBase) -> None:
    generation = kb.save({"synced_version": 17})
    manifest = json.loads((kb.directory / MANIFEST_FILE).read_text())
    assert manifest["generation"] == generation and manifest["counts"]["documents"] == 9
    assert manifest["embedder"] == {"name": "fake-hash", "dim": 64}

    loaded = KnowledgeBase.load(HashEmbedder(), kb.directory)
    assert loaded.meta == {"synced_version": 17} and loaded.generation == generation
    assert len(loaded) == 9
    for query in ("Seeing E-4012 again", "Cannot login to my account", "printer jammed"):
        assert loaded.search(query, 5) == kb.search(query, 5)
    assert loaded.search("checkout", 5, team="payments", resolved_after=1_500.0)[0].id == 3

    loaded.upsert([KBDocument(10, "Monitor flickers", "hardware", "desk")])
    loaded.save({"synced_version": 18})
    assert KnowledgeBase.load(HashEmbedder(), kb.directory).meta == {"synced_version": 18}


def test_missing_manifest_is_stale(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseStale):
        KnowledgeBase.load(HashEmbedder(), tmp_path / "nothing-here")


def test_model_mismatch_is_stale(kb: KnowledgeBase) -> None:
    kb.save({})
    with pytest.raises(KnowledgeBaseStale, match="other-model"):
        KnowledgeBase.load(HashEmbedder(name="other-model"), kb.directory)
    with pytest.raises(KnowledgeBaseStale, match="32"):
        KnowledgeBase.load(HashEmbedder(dim=32), kb.directory)


def test_crash_between_file_writes_is_stale(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    kb.save({"synced_version": 1})
    kb.upsert([KBDocument(11, "Wifi slow in the lobby")])

    def crash(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed between two file writes")

    monkeypatch.setattr(LexicalIndex, "save", crash)
    with pytest.raises(SystemExit):
        kb.save({"synced_version": 2})  # vectors.idx is new, lexical.idx and the manifest are old
    with pytest.raises(KnowledgeBaseStale, match="generation"):
        KnowledgeBase.load(HashEmbedder(), kb.directory)


def test_missing_or_corrupt_files(kb: KnowledgeBase) -> None:
    kb.save({})
    (kb.directory / DOCS_FILE).unlink()
    with pytest.raises(KnowledgeBaseStale, match=DOCS_FILE):
        KnowledgeBase.load(HashEmbedder(), kb.directory)

    kb.save({})
    lexical = kb.directory / LEXICAL_FILE
    lexical.write_bytes(lexical.read_bytes()[:-3])
    with pytest.raises(IndexCorrupt):
        KnowledgeBase.load(HashEmbedder(), kb.directory)

    kb.save({})
    (kb.directory / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IndexCorrupt):
        KnowledgeBase.load(HashEmbedder(), kb.directory)

    kb.save({})
    manifest = json.loads((kb.directory / MANIFEST_FILE).read_text())
    (kb.directory / MANIFEST_FILE).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(IndexFormatMismatch) as info:
        KnowledgeBase.load(HashEmbedder(), kb.directory)
    assert isinstance(info.value, IndexLoadError)


def test_writer_lock_excludes_other_writers(kb: KnowledgeBase) -> None:
    other = KnowledgeBase(HashEmbedder(), kb.directory)
    probe = (
        "import fcntl, sys\n"
        f"fd = open({str(kb.directory / LOCK_FILE)!r}, 'a')\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n"
    )
    with kb.writer_lock():
        with kb.writer_lock():  # re-entrant for the holder
            kb.save({})
        with pytest.raises(TimeoutError), other.writer_lock(timeout=0.1):
            pass
        assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 3
    with other.writer_lock(timeout=1.0):
        pass
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_rebuild_picks_ivf_for_a_large_collection(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    topics = [
        "vpn",
        "printer",
        "password",
        "laptop",
        "email",
        "badge",
        "wifi",
        "monitor",
        "invoice",
        "payroll",
    ]
    words = [f"word{i}" for i in range(300)]

    def docs() -> list[KBDocument]:
        return [
            KBDocument(
                i,
                f"{topics[i % 10]} {' '.join(rng.choice(words, 6))}",
                category=topics[i % 10],
                team="desk" if i % 2 else "netops",
                resolved_at=float(i),
            )
            for i in range(3_000)
        ]

    seen: list[int] = []
    kb = KnowledgeBase(HashEmbedder(), tmp_path / "kb", ivf_threshold=2_000)
    kb.upsert([KBDocument(99_999, "stale document from before")])
    count = kb.rebuild(iter(docs()), total=3_000, batch_size=500, progress=seen.append)
    assert count == 3_000 and seen == [500, 1_000, 1_500, 2_000, 2_500, 3_000]
    assert 99_999 not in kb and kb.vector_index.kind == "ivf_sq8"
    hits = kb.search("printer word7", 5, category="printer", resolved_after=1_000.0)
    assert len(hits) == 5 and all(h.category == "printer" and h.id > 1_000 for h in hits)
    kb.save({"synced_version": 3_000})
    loaded = KnowledgeBase.load(HashEmbedder(), kb.directory, ivf_threshold=2_000)
    assert loaded.vector_index.kind == "ivf_sq8" and len(loaded) == 3_000
    assert loaded.search("printer word7", 5, category="printer", resolved_after=1_000.0) == hits


def test_files_on_disk(kb: KnowledgeBase) -> None:
    kb.save({})
    names = {p.name for p in kb.directory.iterdir()}
    assert {VECTORS_FILE, LEXICAL_FILE, DOCS_FILE, MANIFEST_FILE} <= names
    assert not [name for name in names if ".tmp-" in name]


def test_build_from_batches_with_stored_vectors(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    first, second = DOCS[:5], DOCS[5:]
    batches = [(first, embedder.encode([d.text for d in first])), (second, None)]  # None: embed this one
    calls = len(embedder.calls)
    seen: list[int] = []
    kb = KnowledgeBase.build(embedder, tmp_path / "kb", batches=iter(batches), total=9, progress=seen.append)
    assert len(embedder.calls) == calls + 1  # only the batch without vectors was embedded
    assert len(kb) == 9 and seen == [5, 9]
    assert kb.search("Seeing E-4012 again", 1)[0].id == 1
    with pytest.raises(ValueError, match="shape"):
        KnowledgeBase.build(embedder, tmp_path / "kb2", batches=[(first, np.zeros((5, 3)))])
