"""Embedding many batches in several processes, one thread each, results in input order.

On small machines one thread per process, scaled with processes, beats several threads in one (the
matrix products of a small model do not split well). Bulk work (imports, evaluation) feeds batches
through :func:`encode_batches`; the caller's own process meanwhile does its database writes.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_worker_model: tuple[str, int] | None = None


def _init_worker(model: str, threads: int) -> None:
    global _worker_model
    _worker_model = (model, threads)


def _encode(texts: Sequence[str]) -> np.ndarray:
    from retrieval.embeddings import get_embedder

    assert _worker_model is not None, "worker not initialised"
    name, threads = _worker_model
    return get_embedder(name, threads=threads).encode(list(texts))


def encode_batches(
    batches: Iterable[Sequence[str]], *, model: str, processes: int = 1, threads: int = 1
) -> Iterator[np.ndarray]:
    """Yield the embeddings of each batch of texts, in order. ``processes=1`` stays in this process."""
    if processes <= 1:
        from retrieval.embeddings import get_embedder

        embedder = get_embedder(model, threads=threads)
        for texts in batches:
            yield embedder.encode(list(texts))
        return
    from retrieval.embeddings import get_embedder

    # A model exported on first use (the int8 ONNX one) is exported here once, not by every worker.
    ensure_exported = getattr(get_embedder(model, threads=threads), "ensure_exported", None)
    if ensure_exported is not None:
        ensure_exported()
    # spawn, not fork: torch and onnxruntime thread pools do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=context, initializer=_init_worker, initargs=(model, threads)
    ) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for texts in batches:
            pending.append(pool.submit(_encode, list(texts)))
            if len(pending) >= 2 * processes:  # bounded look-ahead keeps memory flat
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
