"""The int8 ONNX export of the packaged all-MiniLM-L6-v2, checked against sentence-transformers.

Real model, no fakes: the module exports once into a temp dir (about 15 s with the torch import) and every
test reuses it; only the corrupt-cache test exports a second time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval import embeddings
from retrieval.embeddings import SentenceTransformerEmbedder
from retrieval.onnx_embedder import (
    FORMAT_VERSION,
    ONNX_INT8_MODEL,
    OnnxInt8Embedder,
    cache_is_valid,
    default_cache_dir,
    onnx_factory,
    read_model_config,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LONG_TEXT = " ".join(
    f"Step {i}: the VPN client on laptop {i} drops the tunnel after the docking station reconnects."
    for i in range(40)
)
NATURAL_TEXTS = [
    "Printer jammed",
    "I can't log in to my account since the password reset yesterday, please help",
    LONG_TEXT,
    "Mein Drucker druckt seit dem Update keine Seiten mehr.",
    "Je n'arrive pas à me connecter au VPN depuis ce matin.",
    "No puedo acceder a mi correo desde el móvil",
]
DEGENERATE_TEXTS = [
    "",
    "   ",
    "打印机卡纸了",  # every character is [UNK] in this English vocabulary
    "Не работает электронная почта на телефоне",  # noqa: RUF001 (split into single letters)
    "ok 👍",
]
"""Texts that are (almost) only [CLS]/[SEP]/[UNK] or single-letter pieces. Their vectors are dominated by
the special tokens whose outlier activations set the per-batch int8 range, so they drift most: measured
0.968-0.979 cosine to sentence-transformers, while natural text in Latin script is at 0.99."""
VARIED_TEXTS = NATURAL_TEXTS + DEGENERATE_TEXTS


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> OnnxInt8Embedder:
    onnx = OnnxInt8Embedder(cache_dir, threads=1)
    onnx.warmup()
    assert onnx.exported, "a fresh cache dir must trigger one export"
    return onnx


@pytest.fixture(scope="module")
def reference() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(threads=1)


def test_vectors_are_384_d_unit_float32(embedder: OnnxInt8Embedder) -> None:
    vectors = embedder.encode(VARIED_TEXTS)
    assert embedder.name == ONNX_INT8_MODEL and embedder.dim == 384
    assert vectors.shape == (len(VARIED_TEXTS), 384) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.encode("one string")


def test_long_text_is_truncated_at_256_tokens(embedder: OnnxInt8Embedder) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(embedder.model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(LONG_TEXT).ids) > 300, "the long text must exceed the limit to test it"
    assert read_model_config(embedder.model_dir).max_seq_length == 256
    long_vector, with_tail = embedder.encode([LONG_TEXT]), embedder.encode([f"{LONG_TEXT} printer jammed"])
    np.testing.assert_allclose(long_vector, with_tail, atol=1e-6)  # words past token 256 are ignored


@pytest.mark.parametrize("text", NATURAL_TEXTS, ids=lambda text: repr(text[:20]))
def test_close_to_sentence_transformers(
    embedder: OnnxInt8Embedder, reference: SentenceTransformerEmbedder, text: str
) -> None:
    (onnx_vector,) = embedder.encode([text])
    (plain_vector,) = reference.encode([text])
    assert float(onnx_vector @ plain_vector) >= 0.98


@pytest.mark.parametrize("text", DEGENERATE_TEXTS, ids=lambda text: repr(text[:20]))
def test_degenerate_texts_stay_close_and_identifiable(
    embedder: OnnxInt8Embedder, reference: SentenceTransformerEmbedder, text: str
) -> None:
    """A looser bound for near-empty or out-of-vocabulary text, plus: still nearest to its own reference."""
    (onnx_vector,) = embedder.encode([text])
    plain = reference.encode(VARIED_TEXTS)
    assert float(onnx_vector @ plain[VARIED_TEXTS.index(text)]) >= 0.95
    nearest = VARIED_TEXTS[int(np.argmax(plain @ onnx_vector))]
    assert nearest.strip() == text.strip()  # "" and "   " are the same text once stripped


def test_batch_close_to_sentence_transformers(
    embedder: OnnxInt8Embedder, reference: SentenceTransformerEmbedder
) -> None:
    cosines = (embedder.encode(NATURAL_TEXTS, batch_size=4) * reference.encode(NATURAL_TEXTS)).sum(axis=1)
    assert cosines.min() >= 0.98, cosines


DISTINCT_TICKETS = [
    "Printer jammed",
    LONG_TEXT,
    "Outlook asks for my password every five minutes since the Windows update",
    "VPN",
    "Need access to the finance shared drive for the quarterly close",
    "Mein Drucker druckt seit dem Update keine Seiten mehr.",
    "Laptop battery drains very fast",
    "",
    "Payroll portal shows the wrong salary amount for March",
    "Badge does not open the parking garage gate",
    "Teams: microphone not detected",
]


def test_order_is_preserved_when_the_input_is_shuffled(embedder: OnnxInt8Embedder) -> None:
    """One batch holds the same rows whatever the input order, so the vectors must match exactly."""
    permutation = np.random.default_rng(0).permutation(len(DISTINCT_TICKETS))
    straight = embedder.encode(DISTINCT_TICKETS, batch_size=64)
    shuffled = embedder.encode([DISTINCT_TICKETS[i] for i in permutation], batch_size=64)
    np.testing.assert_allclose(shuffled, straight[permutation], atol=1e-5)


def test_order_is_preserved_across_mixed_length_batches(embedder: OnnxInt8Embedder) -> None:
    """Rows come back in input order although batches are formed from length-sorted texts.

    int8 activations are quantised per batch, so a text's vector moves slightly with its batch mates:
    compare by nearest neighbour and a tight cosine, not bit for bit.
    """
    batched = embedder.encode(DISTINCT_TICKETS, batch_size=3)
    alone = np.vstack([embedder.encode([text]) for text in DISTINCT_TICKETS])
    similarity = batched @ alone.T
    assert (similarity.argmax(axis=1) == np.arange(len(DISTINCT_TICKETS))).all()
    same_text = np.diag(similarity)
    natural = np.array([bool(text) for text in DISTINCT_TICKETS])
    assert same_text[natural].min() >= 0.98 and same_text.min() >= 0.95, same_text  # "" drifts most


def test_exported_model_is_cached_and_reused(embedder: OnnxInt8Embedder, cache_dir: Path) -> None:
    path = embedder.onnx_path
    assert path.parent == cache_dir and path.name.startswith(f"{ONNX_INT8_MODEL}-v{FORMAT_VERSION}-")
    mtime = path.stat().st_mtime_ns
    again = OnnxInt8Embedder(cache_dir)
    again.warmup()
    assert not again.exported
    assert again.onnx_path == path and path.stat().st_mtime_ns == mtime
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".")], "temp files left behind"


def test_corrupt_cached_model_is_detected_and_re_exported(embedder: OnnxInt8Embedder, tmp_path: Path) -> None:
    shutil.copytree(embedder.onnx_path.parent, tmp_path, dirs_exist_ok=True)
    copy = OnnxInt8Embedder(tmp_path)
    with copy.onnx_path.open("r+b") as handle:  # same size, garbage in the middle
        handle.seek(copy.onnx_path.stat().st_size // 2)
        handle.write(b"\x00" * 4096)
    assert not cache_is_valid(copy.onnx_path, copy.onnx_path.with_suffix(".json"))
    vectors = copy.encode(["Printer jammed"])
    assert copy.exported
    assert float(vectors[0] @ embedder.encode(["Printer jammed"])[0]) > 0.999


LOAD_SCRIPT = """
import json, sys
from pathlib import Path
from retrieval.onnx_embedder import OnnxInt8Embedder
embedder = OnnxInt8Embedder(Path(sys.argv[1]))
vector = embedder.encode(["Printer jammed"])[0]
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print(json.dumps({"exported": embedder.exported, "heavy": heavy, "vector": vector[:4].tolist()}))
"""


def test_loading_an_exported_model_does_not_import_torch(embedder: OnnxInt8Embedder) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(embedder.onnx_path.parent)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"exported": False, "heavy": [], "vector": report["vector"]}
    np.testing.assert_allclose(report["vector"], embedder.encode(["Printer jammed"])[0][:4], atol=1e-6)


def test_factory_and_registry_use_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(embeddings, "_REGISTRY", dict(embeddings._REGISTRY))
    monkeypatch.setattr(embeddings, "_CACHE", {})
    assert default_cache_dir() == tmp_path / "models"
    made = onnx_factory(2)
    assert made.cache_dir == tmp_path / "models" and made.threads == 2
    assert not (tmp_path / "models").exists(), "constructing must not export"
    assert ONNX_INT8_MODEL in embeddings.known_embedders()
    assert isinstance(embeddings.get_embedder(ONNX_INT8_MODEL, threads=1), OnnxInt8Embedder)
