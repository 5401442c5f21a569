"""Importing the retrieval package must stay light: the web process imports it without embedding anything."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = [
    "retrieval",
    "retrieval.errors",
    "retrieval.embeddings",
    "retrieval.vector_index",
    "retrieval.lexical",
    "retrieval.doc_table",
    "retrieval.knowledge_base",
    "retrieval.array_artefact",
    "retrieval.label_model_parts",
    "retrieval.label_model",
    "retrieval.topic_clusters",
]
HEAVY = ["torch", "faiss", "sentence_transformers", "transformers", "scipy", "django"]

SCRIPT = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
from retrieval.embeddings import SentenceTransformerEmbedder, get_embedder, known_embedders
SentenceTransformerEmbedder()  # constructing must not load the model
get_embedder()
known_embedders()
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_importing_retrieval_does_not_import_heavy_libraries() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(modules=MODULES, heavy=HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_check_detects_a_heavy_import() -> None:
    """Guard against a vacuous test: the same script does report a heavy module once it is imported."""
    script = SCRIPT.format(modules=[*MODULES, "faiss"], heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "faiss" in json.loads(result.stdout.strip().splitlines()[-1])


def test_core_modules_do_not_import_django() -> None:
    django_import = re.compile(r"^\s*(from|import)\s+django\b", re.MULTILINE)
    offenders = [name for name in MODULES if django_import.search(_source(name))]
    assert offenders == []


def _source(module: str) -> str:
    path = REPO.joinpath(*module.split("."))
    return (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text(encoding="utf-8")
