"""The live answer ranker: saved under ``INDEX_DIR`` by whoever fits it, loaded per process.

The fit needs the tickets' answers, which the tickets app owns: ``tickets.suggestions.train_answer_ranker``
gathers them (plain data) and calls :func:`save_answer_ranker`. Every process loads the current artefact
on first use and again when its file changes; a missing, damaged or stale one means the unlearned
ranker (fixed weights, confidence marked uncalibrated, never abstaining) until the next fit.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from retrieval.answer_ranker import AnswerRanker

logger = logging.getLogger(__name__)

ANSWER_RANKER_FILE = "answer_ranker.bin"
RELOAD_CHECK_SECONDS = 5.0


def answer_ranker_path() -> Path:
    return Path(settings.INDEX_DIR) / ANSWER_RANKER_FILE


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ranker: AnswerRanker | None = None
        self.signature: tuple[int, int, int] | None = None
        self.checked_at = 0.0
        self.path: Path | None = None

    def forget(self) -> None:
        with self.lock:
            self.ranker, self.signature, self.checked_at, self.path = None, None, 0.0, None


_cache = _Cache()


def save_answer_ranker(ranker: AnswerRanker) -> None:
    ranker.save(answer_ranker_path())
    _cache.forget()


def current_answer_ranker() -> AnswerRanker:
    """The saved ranker (reloaded when its file changes), or the unlearned one without a usable file."""
    from retrieval.answer_ranker import AnswerRanker, unlearned_ranker
    from retrieval.errors import IndexLoadError
    from retrieval.services import embedder

    name = embedder().name
    path = answer_ranker_path()
    with _cache.lock:
        now = time.monotonic()
        fresh = now - _cache.checked_at < RELOAD_CHECK_SECONDS
        if _cache.signature is not None and _cache.path == path and fresh:
            return _cache.ranker or unlearned_ranker(name)
        _cache.checked_at, _cache.path = now, path
        try:
            stat = path.stat()
        except FileNotFoundError:
            _cache.ranker, _cache.signature = None, (0, 0, 0)
            return unlearned_ranker(name)
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature != _cache.signature:
            try:
                _cache.ranker = AnswerRanker.load(path, embedding_model=name)
            except (IndexLoadError, OSError, KeyError, TypeError, ValueError) as exc:
                logger.warning("answer ranker at %s unusable (%s); refit it (train_answer_ranker)", path, exc)
                _cache.ranker = None
            _cache.signature = signature
        return _cache.ranker or unlearned_ranker(name)


def drafting_wins() -> bool:
    """Whether history showed drafted replies beating the chosen stored answer (recorded in the
    ranker's stats by ``train_answer_ranker --draft-verdict``); False when nothing says so."""
    return bool(current_answer_ranker().stats.get("drafting_beats_stored"))
