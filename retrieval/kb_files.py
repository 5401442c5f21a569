"""The knowledge base on disk: the file names, the manifest that vouches for a save, the writer lock.

``vectors.idx``, ``lexical.idx`` and ``docs.meta`` are each replaced atomically and tagged with the
save's ``generation``; ``manifest.json`` is written last. A reader trusts the files only when their
generation matches the manifest's (:func:`check_files`). Writers serialise through an fcntl lock on
``.lock`` (:func:`acquire_file_lock`); readers need no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embeddings import Embedder
from retrieval.errors import IndexCorrupt, IndexFormatMismatch, KnowledgeBaseStale

FORMAT_VERSION = 1
VECTORS_FILE = "vectors.idx"
LEXICAL_FILE = "lexical.idx"
DOCS_FILE = "docs.meta"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = ".lock"


class GenerationMismatch(Exception):
    """The files are not all from the save the manifest names."""


def read_manifest(directory: Path, embedder: Embedder) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeBaseStale(f"{path} does not exist: build the knowledge base first") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("generation"), str):
        raise IndexCorrupt(f"{path}: not a knowledge base manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatMismatch(
            f"{path}: format_version {manifest.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    saved = manifest.get("embedder") or {}
    if saved.get("name") != embedder.name or saved.get("dim") != embedder.dim:
        raise KnowledgeBaseStale(
            f"{path}: built with {saved.get('name')!r} ({saved.get('dim')}-d), now using {embedder.name!r} "
            f"({embedder.dim}-d): rebuild the knowledge base"
        )
    return manifest


def acquire_file_lock(path: Path, timeout: float | None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"timed out waiting for the writer lock {path}") from None
                time.sleep(0.02)
    except BaseException:
        os.close(fd)
        raise


def check_files(
    directory: Path,
    manifest: dict[str, Any],
    embedder: Embedder,
    *,
    headers: dict[Path, dict[str, Any]],
    counts: tuple[int, int, int],
    id_sets: tuple[np.ndarray, np.ndarray, np.ndarray],
    dim: int,
) -> None:
    """Check that the loaded vector, lexical and document files belong to the manifest's save and to
    each other; raises :class:`GenerationMismatch` (a save happened meanwhile, or was interrupted),
    ``KnowledgeBaseStale`` or ``IndexCorrupt``."""
    generation = manifest["generation"]
    for path, header in headers.items():
        file_generation = (header.get("meta") or {}).get("generation")
        if file_generation != generation:
            raise GenerationMismatch(
                f"{path}: generation {file_generation!r} differs from the manifest's {generation!r} "
                "(a save was interrupted): rebuild the knowledge base"
            )
    if dim != embedder.dim:
        raise KnowledgeBaseStale(
            f"{directory / VECTORS_FILE}: vectors have {dim} dimensions, model has {embedder.dim}"
        )
    count = manifest.get("counts", {}).get("documents")
    vectors, lexical, docs = counts
    if not (vectors == lexical == docs == count):
        raise IndexCorrupt(
            f"{directory}: counts differ (vectors {vectors}, lexical {lexical}, docs {docs}, "
            f"manifest {count})"
        )
    vector_ids, lexical_ids, doc_ids = id_sets
    if not (np.array_equal(vector_ids, doc_ids) and np.array_equal(lexical_ids, doc_ids)):
        raise IndexCorrupt(f"{directory}: the files hold different document ids")
