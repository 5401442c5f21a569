"""Shadow work yields to live traffic: a shadow decision waits while live tickets wait.

A shadow candidate's decisions are not urgent; the active path's are. Before a shadow task decides,
:func:`yield_to_live_traffic` reads how many messages wait in the live stage queues (``ingest``,
``model``, ``output``: one Redis round trip, ``LLEN`` of each list in a pipeline) and, while any do,
sleeps in short steps (no CPU, no database work), until they are empty or the ticket's decision is
``MODEL_SHADOW_MAX_DEFER_SECONDS`` old; then it decides anyway. Under a burst the shadow candidate
costs the active path nothing and catches up when the burst is over; under sustained overload its
decisions trail the live ones by about the bound, never lost (the task is idempotent, and its time
limits are the bound plus the usual ones). 0 disables waiting.

Only a worker that consumes the ``shadow`` queue alone waits: in a worker that also consumes other
queues a sleeping shadow task would hold up their tasks (webhooks, knowledge sync), so there it
decides at once. Only a Redis broker is read; with another (the embedded filesystem broker, the
single-process demo) nothing waits.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings

from inference_app.metrics import queue_lengths
from tickets.pipeline.stages import SHADOW_QUEUE, WORK_STAGES

logger = logging.getLogger(__name__)

STEP_SECONDS = 0.5
"""How often a waiting shadow task looks at the live queues again."""


def yield_to_live_traffic(*, queued_at: float | None) -> float:
    """Wait while the live stage queues hold messages, at most until ``queued_at`` (epoch seconds,
    when the shadow task was enqueued) plus ``MODEL_SHADOW_MAX_DEFER_SECONDS``; seconds waited."""
    bound = float(settings.MODEL_SHADOW_MAX_DEFER_SECONDS)
    if bound <= 0 or not _dedicated_shadow_worker():
        return 0.0
    started = time.time()
    deadline = (queued_at if queued_at is not None else started) + bound
    while time.time() < deadline and live_backlog():
        time.sleep(min(STEP_SECONDS, max(0.0, deadline - time.time())))
    waited = time.time() - started
    if waited >= STEP_SECONDS:
        logger.info("shadow decision waited %.1f s for the live queues", waited)
    return waited


def live_backlog() -> int:
    """Messages waiting in the live stage queues (0 where the broker is not Redis or cannot be read)."""
    url = settings.CELERY_BROKER_URL
    if urlsplit(url).scheme not in {"redis", "rediss"}:
        return 0
    import redis

    try:
        lengths, _ = queue_lengths(url, [row.queue for row in WORK_STAGES])
    except redis.RedisError as exc:  # the decision must not wait on an unreadable broker
        logger.warning("live queue lengths unreadable (%s): the shadow decision does not wait", exc)
        return 0
    return sum(lengths.values())


def _dedicated_shadow_worker() -> bool:
    """Whether this process is a worker consuming the shadow queue and nothing else (outside a worker,
    Celery reports every queue)."""
    return set(current_app.amqp.queues.consume_from) == {SHADOW_QUEUE}
