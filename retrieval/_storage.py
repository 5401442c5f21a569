"""Crash-safe file writing and the small container format shared by all index files.

A container is ``[8-byte magic][4-byte little-endian header length][UTF-8 JSON header][payload]``. The
header records the payload's length and CRC-32 so that truncation or bit rot is reported as
``IndexCorrupt`` before any bytes reach FAISS or NumPy (which may crash or allocate wildly on garbage).

Files are written to ``<name>.tmp-<pid>`` in the same folder, flushed and fsynced, then renamed over the
target with ``os.replace`` and the folder fsynced: readers see either the old file or the new one, never
a mix, and a killed writer leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from retrieval.errors import IndexCorrupt, IndexFormatMismatch

MAGIC_LEN = 8
_HEADER_LEN = struct.Struct("<I")
_MAX_HEADER_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 16 * 1024 * 1024

Buffer = bytes | bytearray | memoryview


def fsync_dir(directory: Path) -> None:
    """Persist a rename: without this, a power cut may forget the new directory entry."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_tmp_files(path: Path) -> None:
    """Delete temporary files left by writers that died (their pid no longer exists)."""
    prefix = f"{path.name}.tmp-"
    for candidate in path.parent.glob(f"{path.name}.tmp-*"):
        pid_text = candidate.name[len(prefix) :]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        except PermissionError:
            pass  # alive, owned by someone else


def atomic_write(path: Path, parts: Iterable[Buffer]) -> None:
    """Write ``parts`` to ``path`` so that a crash at any point leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp_files(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            for part in parts:
                view = memoryview(part).cast("B")
                for start in range(0, len(view), _CHUNK_BYTES):
                    fh.write(view[start : start + _CHUNK_BYTES])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write a small JSON document (the knowledge base manifest)."""
    atomic_write(path, [json.dumps(data, indent=2, sort_keys=True).encode("utf-8")])


def write_container(path: Path, magic: bytes, header: dict[str, Any], payload: Buffer) -> None:
    """Atomically write ``header`` and ``payload`` as one container file."""
    if len(magic) != MAGIC_LEN:
        raise ValueError(f"magic must be {MAGIC_LEN} bytes")
    view = memoryview(payload).cast("B")
    full_header = dict(header, payload_bytes=len(view), payload_crc32=zlib.crc32(view))
    header_bytes = json.dumps(full_header, sort_keys=True).encode("utf-8")
    atomic_write(path, [magic, _HEADER_LEN.pack(len(header_bytes)), header_bytes, view])


def read_container(path: Path, magic: bytes, *, format_version: int) -> tuple[dict[str, Any], memoryview]:
    """Read and verify a container; return its header and a zero-copy view of its payload.

    Raises ``IndexCorrupt`` for anything damaged, ``IndexFormatMismatch`` when the header is readable but
    declares another ``format_version``, and ``FileNotFoundError`` when the file does not exist.
    """
    data = Path(path).read_bytes()
    if len(data) < MAGIC_LEN + _HEADER_LEN.size:
        raise IndexCorrupt(f"{path}: file too short ({len(data)} bytes)")
    if data[:MAGIC_LEN] != magic:
        raise IndexCorrupt(f"{path}: bad magic {data[:MAGIC_LEN]!r}, expected {magic!r}")
    (header_len,) = _HEADER_LEN.unpack_from(data, MAGIC_LEN)
    start = MAGIC_LEN + _HEADER_LEN.size
    if header_len > _MAX_HEADER_BYTES or start + header_len > len(data):
        raise IndexCorrupt(f"{path}: truncated or invalid header (length {header_len})")
    try:
        header = json.loads(data[start : start + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise IndexCorrupt(f"{path}: header is not a JSON object")
    version = header.get("format_version")
    if version != format_version:
        raise IndexFormatMismatch(f"{path}: format_version {version!r}, this code reads {format_version}")
    payload = memoryview(data)[start + header_len :]
    expected_len = header.get("payload_bytes")
    if expected_len != len(payload):
        raise IndexCorrupt(
            f"{path}: payload is {len(payload)} bytes, header says {expected_len!r} (truncated?)"
        )
    if header.get("payload_crc32") != zlib.crc32(payload):
        raise IndexCorrupt(f"{path}: payload checksum mismatch")
    return header, payload
