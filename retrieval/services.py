"""The knowledge base as the rest of Switchboard sees it: upsert, remove, search, rebuild.

Truth lives in the database (``KnowledgeEntry``: text, labels and embedding of every document).
Each process keeps a local :class:`~retrieval.knowledge_base.KnowledgeBase` (FAISS + BM25) that
it loads from the index files in ``INDEX_DIR`` and keeps current by applying the entries whose
``version`` is newer than the last one it applied. So every web process and worker, on any
machine, sees the same knowledge base within ``SYNC_INTERVAL_SECONDS``; the process that writes a
change sees it at once. Index files are a cache: missing, corrupt, or made by another embedding
model, they are rebuilt from the database, never silently mixed.

Heavy libraries (torch, sentence-transformers, faiss) load on first use, not at import.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max

from retrieval.models import KnowledgeEntry

if TYPE_CHECKING:
    import numpy as np

    from retrieval.embeddings import Embedder
    from retrieval.knowledge_base import Hit, KBDocument, KnowledgeBase

logger = logging.getLogger(__name__)

SYNC_INTERVAL_SECONDS = 2.0
SNAPSHOT_EVERY_CHANGES = 500
SYNC_CHUNK = 2000
_VERSION_LOCK_KEY = 0x5357424B42  # "SWBKB": one knowledge-base writer at a time (PostgreSQL)


@dataclass(frozen=True)
class KBItem:
    """One document to index: a resolved ticket's text and labels."""

    doc_id: int
    text: str
    category: str = ""
    team: str = ""
    resolved_at: datetime | None = None
    answer: str = ""
    """The answer the agent sent: embedded beside the text, for choosing among answers later."""


def embedding_model_name() -> str:
    """The embedder in use: the adopted tuned model when there is a sound one, else ``EMBEDDING_MODEL``."""
    from retrieval.tuned_embedder import resolve_embedding_model

    return resolve_embedding_model(settings.EMBEDDING_MODEL, use_tuned=settings.TUNED_EMBEDDINGS)


def embedder() -> Embedder:
    from retrieval.embeddings import get_embedder

    return get_embedder(embedding_model_name(), threads=settings.SWITCHBOARD_THREADS)


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    return embedder().encode(list(texts))


_ENTRY_FIELDS = (
    "doc_id",
    "text",
    "category",
    "team",
    "resolved_at",
    "embedding",
    "embedding_model",
    "deleted",
)


# --- writing the truth ---------------------------------------------------------------------------


def _lock_writers() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_VERSION_LOCK_KEY])


def _write_entries(build: Callable[[int], list[KnowledgeEntry]]) -> None:
    """Write entries under the writer lock with consecutive new versions, retrying on a version race."""
    for _attempt in range(10):
        try:
            with transaction.atomic():
                _lock_writers()
                base = (KnowledgeEntry.objects.aggregate(top=Max("version"))["top"] or 0) + 1
                entries = build(base)
                KnowledgeEntry.objects.bulk_create(
                    entries,
                    update_conflicts=True,
                    unique_fields=["doc_id"],
                    update_fields=[*_ENTRY_FIELDS[1:], "answer_embedding", "version", "updated_at"],
                )
            break
        except IntegrityError:
            # Another writer took these versions first (SQLite has no advisory lock); take the next.
            continue
    else:
        raise RuntimeError("could not write to the knowledge base: version conflicts persisted")
    transaction.on_commit(_sync_after_write)


def kb_upsert(
    *, items: Sequence[KBItem], vectors: np.ndarray | None = None, embedding_model: str | None = None
) -> int:
    """Add or replace documents (embedding them unless ``vectors`` is given, made by ``embedding_model``,
    default the current embedder). Returns the count."""
    if not items:
        return 0
    model_name = embedding_model or embedder().name
    if vectors is None:
        vectors = embed_texts([item.text for item in items])
        model_name = embedder().name
    blobs = [vector.astype("<f4").tobytes() for vector in vectors]
    answer_blobs = _answer_blobs(items)

    def build(base: int) -> list[KnowledgeEntry]:
        return [
            KnowledgeEntry(
                doc_id=item.doc_id,
                text=item.text,
                category=item.category,
                team=item.team,
                resolved_at=item.resolved_at,
                embedding=blob,
                embedding_model=model_name,
                answer_embedding=answer_blob,
                deleted=False,
                version=base + offset,
            )
            for offset, (item, blob, answer_blob) in enumerate(zip(items, blobs, answer_blobs, strict=True))
        ]

    _write_entries(build)
    return len(items)


def _answer_blobs(items: Sequence[KBItem]) -> list[bytes | None]:
    """The answers' embeddings (None where an item has no answer), embedded in one batch."""
    present = [index for index, item in enumerate(items) if item.answer.strip()]
    blobs: list[bytes | None] = [None] * len(items)
    if present:
        vectors = embed_texts([items[index].answer for index in present])
        for index, vector in zip(present, vectors, strict=True):
            blobs[index] = vector.astype("<f4").tobytes()
    return blobs


def kb_answer_vectors(
    *, doc_ids: Sequence[int], answers: Mapping[int, str] | None = None
) -> dict[int, np.ndarray]:
    """The stored answer embeddings of ``doc_ids`` (current embedding model); an entry without one is
    embedded now from ``answers`` when given (entries written before answers were embedded)."""
    import numpy as np

    model = embedder()
    found = {
        doc_id: np.frombuffer(bytes(blob), dtype="<f4")
        for doc_id, blob in KnowledgeEntry.objects.filter(
            doc_id__in=list(doc_ids),
            deleted=False,
            embedding_model=model.name,
            answer_embedding__isnull=False,
        ).values_list("doc_id", "answer_embedding")
        if blob
    }
    missing = [
        doc_id for doc_id in doc_ids if doc_id not in found and (answers or {}).get(doc_id, "").strip()
    ]
    if missing and answers is not None:
        for doc_id, vector in zip(missing, model.encode([answers[d] for d in missing]), strict=True):
            found[doc_id] = np.asarray(vector, dtype=np.float32)
    return found


def kb_remove(*, doc_ids: Iterable[int]) -> int:
    """Remove documents (a reopened or deleted ticket). Tombstones carry the removal to every machine."""
    ids = sorted(set(doc_ids))
    if not ids:
        return 0

    def build(base: int) -> list[KnowledgeEntry]:
        return [
            KnowledgeEntry(doc_id=doc_id, text="", embedding=None, deleted=True, version=base + offset)
            for offset, doc_id in enumerate(ids)
        ]

    _write_entries(build)
    return len(ids)


# --- the local index ---------------------------------------------------------------------------


class _LocalIndex:
    """This process's knowledge base and how far it has caught up with the database."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.kb: KnowledgeBase | None = None
        self.synced_version = 0
        self.saved_version = 0
        self.checked_at = 0.0


_local = _LocalIndex()


def _as_document(row: dict[str, Any]) -> KBDocument:
    from retrieval.knowledge_base import KBDocument

    resolved = row["resolved_at"]
    return KBDocument(
        id=row["doc_id"],
        text=row["text"],
        category=row["category"] or None,
        team=row["team"] or None,
        resolved_at=resolved.timestamp() if resolved else None,
    )


def _vectors_for(rows: list[dict[str, Any]]) -> np.ndarray:
    """Stored vectors where the entry was embedded by the current model; others are embedded now."""
    import numpy as np

    model = embedder()
    vectors = np.zeros((len(rows), model.dim), dtype=np.float32)
    stale = [
        index
        for index, row in enumerate(rows)
        if row["embedding_model"] != model.name or not row["embedding"]
    ]
    stale_set = set(stale)
    for index, row in enumerate(rows):
        if index not in stale_set:
            vectors[index] = np.frombuffer(bytes(row["embedding"]), dtype="<f4")
    if stale:
        vectors[stale] = model.encode([rows[index]["text"] for index in stale])
    return vectors


def _entries_after(version: int) -> Iterator[list[dict[str, Any]]]:
    while True:
        chunk = list(
            KnowledgeEntry.objects.filter(version__gt=version)
            .order_by("version")
            .values(*_ENTRY_FIELDS, "version")[:SYNC_CHUNK]
        )
        if not chunk:
            return
        yield chunk
        version = chunk[-1]["version"]


def _apply(kb: KnowledgeBase, rows: list[dict[str, Any]]) -> None:
    live = [row for row in rows if not row["deleted"]]
    gone = [row["doc_id"] for row in rows if row["deleted"]]
    if gone:
        kb.remove(gone)
    if live:
        kb.upsert([_as_document(row) for row in live], vectors=_vectors_for(live))


def _sync_locked(kb: KnowledgeBase) -> None:
    for chunk in _entries_after(_local.synced_version):
        _apply(kb, chunk)
        _local.synced_version = chunk[-1]["version"]
    _local.checked_at = time.monotonic()
    if _local.synced_version - _local.saved_version >= SNAPSHOT_EVERY_CHANGES:
        _save_locked(kb)


def _save_locked(kb: KnowledgeBase) -> None:
    with kb.writer_lock():
        kb.save(meta={"synced_version": _local.synced_version})
    _local.saved_version = _local.synced_version


def _open_locked() -> KnowledgeBase:
    from retrieval.errors import IndexLoadError
    from retrieval.knowledge_base import KnowledgeBase

    try:
        kb = KnowledgeBase.load(embedder(), settings.INDEX_DIR)
        _local.synced_version = _local.saved_version = int(kb.meta.get("synced_version", 0))
        logger.info("knowledge base loaded: %d documents, version %d", len(kb), _local.synced_version)
    except IndexLoadError as exc:
        logger.warning("knowledge base index unusable (%s); rebuilding it from the database", exc)
        kb = _rebuild_locked(progress=None)
    return kb


def _rebuild_locked(progress: Callable[[int], None] | None) -> KnowledgeBase:
    from retrieval.knowledge_base import KnowledgeBase

    top = KnowledgeEntry.objects.aggregate(top=Max("version"))["top"] or 0
    live = KnowledgeEntry.objects.filter(deleted=False, version__lte=top)
    kb = KnowledgeBase.build(
        embedder(),
        settings.INDEX_DIR,
        batches=_live_batches(live.order_by("doc_id"), progress),
        total=live.count(),
    )
    _local.kb, _local.synced_version = kb, top
    _save_locked(kb)
    return kb


def _live_batches(
    queryset: Any, progress: Callable[[int], None] | None
) -> Iterator[tuple[list[KBDocument], Any]]:
    rows: list[dict[str, Any]] = []
    for row in queryset.values(*_ENTRY_FIELDS).iterator(chunk_size=SYNC_CHUNK):
        rows.append(row)
        if len(rows) == SYNC_CHUNK:
            yield [_as_document(item) for item in rows], _vectors_for(rows)
            if progress:
                progress(len(rows))
            rows = []
    if rows:
        yield [_as_document(item) for item in rows], _vectors_for(rows)
        if progress:
            progress(len(rows))


def knowledge_base(*, force_sync: bool = False) -> KnowledgeBase:
    """This process's knowledge base, caught up with the database (at most a few seconds behind)."""
    with _local.lock:
        if _local.kb is None or _local.kb.embedder.name != embedding_model_name():
            # First use, or another embedding model adopted: its own index (rebuilt if the files differ).
            _local.kb = _open_locked()
            force_sync = True
        if force_sync or time.monotonic() - _local.checked_at >= SYNC_INTERVAL_SECONDS:
            _sync_locked(_local.kb)
        return _local.kb


def _sync_after_write() -> None:
    if _local.kb is not None:
        knowledge_base(force_sync=True)


def kb_rebuild(*, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the local index files from the database (re-embedding entries of another model)."""
    with _local.lock:
        kb = _rebuild_locked(progress)
        return len(kb)


def kb_reset_local() -> None:
    """Forget this process's loaded index (tests, or after files were replaced underneath)."""
    with _local.lock:
        _local.kb = None
        _local.synced_version = _local.saved_version = 0
        _local.checked_at = 0.0


# --- searching ---------------------------------------------------------------------------------


def kb_search(
    *,
    text: str,
    k: int = 5,
    category: str | None = None,
    team: str | None = None,
    resolved_after: datetime | None = None,
    exclude_ids: Sequence[int] = (),
    query_vector: np.ndarray | None = None,
) -> list[Hit]:
    """The ``k`` most similar documents, hybrid dense + lexical, best first.

    ``query_vector`` is ``text``'s embedding when the caller has it already (batched embedding)."""
    return knowledge_base().search(
        text,
        k,
        category=category,
        team=team,
        resolved_after=resolved_after.timestamp() if resolved_after else None,
        exclude_ids=tuple(exclude_ids),
        query_vector=query_vector,
    )
