"""Model artefacts that cannot execute code on load: NumPy arrays plus a JSON manifest, in one file.

A fitted model is saved as plain numbers and strings, never as pickled objects: the file is the
container of :mod:`retrieval._storage` (magic, JSON header with a ``format_version``, CRC-checked
payload; written to a temporary file, fsynced, renamed) whose header carries the manifest and whose
payload is an ``.npz`` archive read with ``allow_pickle=False``. Whoever can write ``INDEX_DIR`` can at
worst make a model give wrong answers, never run code in the processes that load it.

Loading refuses, with :class:`~retrieval.errors.IndexCorrupt` or
:class:`~retrieval.errors.IndexFormatMismatch` (both ``IndexLoadError``): another magic (a pickle, any
foreign file), another format version (older artefacts, such as the pickled label model of format 2,
are never deserialised), a damaged payload, object arrays, arrays missing or of an unexpected kind.

Callers rebuild their model from the arrays (see :mod:`retrieval.label_model_parts`); strings lists of
any size go in as :func:`pack_strings` arrays rather than into the manifest.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval._storage import read_container, write_container
from retrieval.errors import IndexCorrupt

__all__ = ["Artefact", "load_artefact", "pack_strings", "save_artefact", "unpack_strings"]

_MANIFEST_KEY = "manifest"
_ARRAY_KINDS = frozenset("biuf")
"""Booleans, signed and unsigned integers, floats: nothing that needs pickle or carries objects."""


@dataclass(frozen=True)
class Artefact:
    """What :func:`load_artefact` read: the manifest and the arrays, checked on access."""

    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def array(
        self, name: str, *, kind: str = "biuf", ndim: int | None = None, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """The array ``name``, refused (``IndexCorrupt``) when missing or of another kind or shape."""
        value = self.arrays.get(name)
        if value is None:
            raise IndexCorrupt(f"{self.path}: array {name!r} missing")
        if value.dtype.kind not in kind:
            raise IndexCorrupt(f"{self.path}: array {name!r} has dtype {value.dtype}, expected kind {kind!r}")
        if ndim is not None and value.ndim != ndim:
            raise IndexCorrupt(f"{self.path}: array {name!r} has {value.ndim} dimensions, expected {ndim}")
        if shape is not None and value.shape != shape:
            raise IndexCorrupt(f"{self.path}: array {name!r} has shape {value.shape}, expected {shape}")
        return value

    def field(self, name: str, expected: type | tuple[type, ...]) -> Any:
        """The manifest entry ``name``, refused (``IndexCorrupt``) when missing or of another type."""
        value = self.manifest.get(name)
        types = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise IndexCorrupt(f"{self.path}: manifest entry {name!r} is {type(value).__name__}")
        return value


def save_artefact(
    path: Path,
    *,
    magic: bytes,
    format_version: int,
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
) -> None:
    """Write ``manifest`` (JSON-serialisable) and ``arrays`` (numbers only) atomically to ``path``.

    Raises ``ValueError`` for an object or string array, ``TypeError`` for a manifest JSON cannot hold
    (both before anything is written).
    """
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _ARRAY_KINDS:
            raise ValueError(
                f"array {name!r}: only numeric arrays are saved, got {getattr(value, 'dtype', value)!r}"
            )
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **{name: np.ascontiguousarray(v) for name, v in arrays.items()})
    header = {"format_version": format_version, _MANIFEST_KEY: dict(manifest)}
    write_container(Path(path), magic, header, buffer.getbuffer())


def load_artefact(path: Path, *, magic: bytes, format_version: int) -> Artefact:
    """Read an artefact written by :func:`save_artefact`; nothing in it is executed or unpickled.

    Raises ``FileNotFoundError``, ``IndexCorrupt`` or ``IndexFormatMismatch``.
    """
    path = Path(path)
    header, payload = read_container(path, magic, format_version=format_version)
    manifest = header.get(_MANIFEST_KEY)
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"{path}: no manifest in the header")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # object arrays raise ValueError
        raise IndexCorrupt(f"{path}: cannot read the arrays: {exc}") from exc
    for name, value in arrays.items():
        if value.dtype.kind not in _ARRAY_KINDS:
            raise IndexCorrupt(f"{path}: array {name!r} has dtype {value.dtype}: not a model artefact")
    return Artefact(path=path, manifest=manifest, arrays=arrays)


def pack_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Any strings as two numeric arrays: their UTF-8 bytes concatenated and the end offsets."""
    encoded = [text.encode("utf-8") for text in strings]
    ends = np.cumsum([len(item) for item in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), ends


def unpack_strings(data: np.ndarray, ends: np.ndarray, *, where: str = "strings") -> list[str]:
    """The strings :func:`pack_strings` packed; ``IndexCorrupt`` for inconsistent arrays."""
    if data.ndim != 1 or ends.ndim != 1 or data.dtype != np.uint8 or ends.dtype.kind not in "iu":
        raise IndexCorrupt(f"{where}: not a packed string list")
    if ends.size and (ends[-1] != data.size or np.any(np.diff(ends) < 0) or ends[0] < 0):
        raise IndexCorrupt(f"{where}: inconsistent string offsets")
    if not ends.size and data.size:
        raise IndexCorrupt(f"{where}: inconsistent string offsets")
    raw = data.tobytes()
    starts = np.concatenate(([0], ends[:-1])) if ends.size else ends
    try:
        return [raw[int(a) : int(b)].decode("utf-8") for a, b in zip(starts, ends, strict=True)]
    except UnicodeDecodeError as exc:
        raise IndexCorrupt(f"{where}: strings are not UTF-8: {exc}") from exc
