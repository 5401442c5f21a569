"""The tuned embedding model as an artefact: saved, checked, adopted, loaded; the shipped one otherwise.

An artefact is a folder ``<models>/tuned/<name>/`` holding ``model.onnx`` (int8, exported like the shipped
model), the tokenizer and pooling files, and ``manifest.json`` (format version, the base model's name and
content hash, the ONNX file's size and SHA-256, the tuning's figures). It is built in a temporary folder
and renamed into place, so a reader sees no folder or a complete one. Its name carries the content hash
(``all-MiniLM-L6-v2-onnx-int8-tuned-<hash>``): entries, index files and label models record the embedder
name, so vectors of two models are never mixed and a new model forces their rebuild.

``current.json`` in the same folder names the adopted model. :func:`resolve_embedding_model` turns the
configured model into the one to use: the adopted tuned model when it checks out, else the shipped model
(a foreign or damaged artefact is refused with a logged reason, never loaded).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from retrieval._storage import atomic_write_json
from retrieval.model_files import DEFAULT_MODEL, find_model_dir
from retrieval.onnx_embedder import (
    TUNED_PREFIX,
    OnnxInt8Embedder,
    default_cache_dir,
    export_model,
    file_sha256,
    source_hash,
)

logger = logging.getLogger(__name__)

TUNED_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
CURRENT_FILE = "current.json"
KEPT_FILES = (
    "config.json",
    "tokenizer.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
RESOLVE_CHECK_SECONDS = 5.0


class TunedEmbedderRefused(RuntimeError):
    """The tuned artefact is missing, damaged, of another format or of another base model."""


def tuned_root() -> Path:
    return default_cache_dir() / "tuned"


def save_tuned(tuned_model_dir: Path, *, root: Path, stats: dict[str, Any]) -> str:
    """Export the tuned weights in ``tuned_model_dir`` to int8 ONNX and save the artefact under ``root``
    atomically. Returns its name (which carries the content hash)."""
    base_dir = find_model_dir()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=".tuned-"))
    try:
        export_model(tuned_model_dir, work / MODEL_FILE, work / "export.json")
        (work / "export.json").unlink()
        for relative in KEPT_FILES:
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tuned_model_dir / relative, work / relative)
        digest = file_sha256(work / MODEL_FILE)
        name = f"{TUNED_PREFIX}{digest[:12]}"
        manifest = {
            "format_version": TUNED_FORMAT_VERSION,
            "name": name,
            "base_model": DEFAULT_MODEL,
            "base_hash": source_hash(base_dir),
            "size": (work / MODEL_FILE).stat().st_size,
            "sha256": digest,
            "created": time.time(),
            "tuning": stats,
        }
        atomic_write_json(work / MANIFEST, manifest)
        work.chmod(0o755)
        final = root / name
        if final.exists():  # the same content saved before: keep the existing copy
            return name
        os.replace(work, final)
        return name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_tuned(name: str, *, root: Path) -> Path:
    """The artefact folder of ``name`` after checking it fully; raises :class:`TunedEmbedderRefused`."""
    folder = root / name
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TunedEmbedderRefused(f"tuned embedder {name!r}: no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != TUNED_FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise TunedEmbedderRefused(
            f"tuned embedder {name!r} has format {found!r}, this version reads {TUNED_FORMAT_VERSION}"
        )
    if manifest.get("base_model") != DEFAULT_MODEL or manifest.get("base_hash") != source_hash(
        find_model_dir()
    ):
        raise TunedEmbedderRefused(
            f"tuned embedder {name!r} was tuned from {manifest.get('base_model')!r} "
            f"({manifest.get('base_hash')}), not from the installed {DEFAULT_MODEL}"
        )
    if manifest.get("name") != name:
        raise TunedEmbedderRefused(f"tuned embedder folder {name!r} holds {manifest.get('name')!r}")
    model = folder / MODEL_FILE
    if not model.is_file() or model.stat().st_size != manifest.get("size"):
        raise TunedEmbedderRefused(f"tuned embedder {name!r}: model file missing or truncated")
    if file_sha256(model) != manifest.get("sha256"):
        raise TunedEmbedderRefused(f"tuned embedder {name!r}: model file does not match its checksum")
    return folder


def read_manifest(name: str, *, root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((check_tuned(name, root=root) / MANIFEST).read_text(encoding="utf-8"))
    return loaded


class TunedOnnxEmbedder(OnnxInt8Embedder):
    """A checked tuned artefact, run like the shipped int8 ONNX model (same tokenizer, pooling)."""

    def __init__(self, name: str, *, root: Path, threads: int = 1) -> None:
        folder = check_tuned(name, root=root)
        super().__init__(folder, threads=threads, model_dir=folder)
        self.name = name

    def _cache_paths(self) -> tuple[Path, Path]:
        return self.model_dir / MODEL_FILE, self.model_dir / MANIFEST

    def ensure_exported(self) -> Path:
        return self.model_dir / MODEL_FILE  # checked when constructed; never re-exported


def tuned_factory(name: str) -> Any:
    """``get_embedder``'s factory for a tuned name: the artefact in :func:`tuned_root`."""
    return lambda threads: TunedOnnxEmbedder(name, root=tuned_root(), threads=threads)


# --- which model is adopted ------------------------------------------------------------------------


def adopt(name: str | None, *, root: Path) -> None:
    """Make ``name`` the adopted tuned model (checked first); None goes back to the shipped model."""
    if name is not None:
        check_tuned(name, root=root)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / CURRENT_FILE, {"name": name, "adopted_at": time.time()})
    _resolved.forget()


def adopted_name(*, root: Path) -> str | None:
    try:
        data = json.loads((root / CURRENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return str(name) if name else None


class _Resolved:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[str, bool, float] | None = None
        self.name = ""
        self.checked_at = 0.0

    def forget(self) -> None:
        with self.lock:
            self.key, self.checked_at = None, 0.0


_resolved = _Resolved()


def resolve_embedding_model(configured: str, *, use_tuned: bool) -> str:
    """The embedder to use: the adopted tuned model when ``use_tuned`` and it checks out, else
    ``configured``. Re-read at most every few seconds; a refused artefact is logged once per change."""
    if not use_tuned:
        return configured
    root = tuned_root()
    with _resolved.lock:
        now = time.monotonic()
        if _resolved.key is not None and now - _resolved.checked_at < RESOLVE_CHECK_SECONDS:
            return _resolved.name
        _resolved.checked_at = now
        try:
            mtime = (root / CURRENT_FILE).stat().st_mtime
        except OSError:
            mtime = 0.0
        key = (configured, use_tuned, mtime)
        if key == _resolved.key:
            return _resolved.name
        name = adopted_name(root=root) if mtime else None
        chosen = configured
        if name is not None:
            try:
                check_tuned(name, root=root)
                chosen = name
            except TunedEmbedderRefused as exc:
                logger.warning("%s; using the shipped model %s instead", exc, configured)
        _resolved.key, _resolved.name = key, chosen
        return chosen
