"""Promotion and roll back of the label model version on two real Celery workers while tickets flow:
every worker decides with the new version within 10 s, and no ticket is lost or decided twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import worker_environment
from tests.model_factories import label_version
from tests.pipeline.test_worker import Worker, _all_final, _assert_processed_exactly_once, _wait_for
from tickets.decision_models import DecisionStamp
from tickets.models import AuditEvent, Category
from tickets.services.model_registry import model_promote, model_roll_back
from tickets.services.submission import ticket_submit

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SWITCH_WITHIN = timedelta(seconds=10)


@pytest.fixture
def workers(history: dict[str, Category], knowledge_dir: Path, tmp_path: Path) -> Iterator[list[Worker]]:
    env = worker_environment(knowledge_dir, PIPELINE_USE_MODEL="never", PIPELINE_BATCH_SIZE="2")
    started = [Worker(env, tmp_path / f"worker-{n}.log", beat=False) for n in range(2)]
    yield started
    for worker in started:
        worker.stop()


def _feed(ids: list[int], seconds: float) -> None:
    """Submit a ticket every 0.25 s for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n = len(ids)
        subject, body = [
            ("VPN gone", "The VPN tunnel cannot be established from my home office."),
            ("Refund", "You charged my credit card twice for one order, please refund one."),
            ("Locked out", "My account is locked after three wrong passwords."),
        ][n % 3]
        ids.append(ticket_submit(subject=f"{subject} {n}", body=body).pk)
        time.sleep(0.25)


def _decided_with(ids: list[int]) -> list[tuple[datetime, int]]:
    """(when the input stage chose its version, the version) of each decided ticket."""
    chosen = dict(
        AuditEvent.objects.filter(ticket_id__in=ids, action="retrieval.done").values_list(
            "ticket_id", "created_at"
        )
    )
    stamps = DecisionStamp.objects.filter(suggestion__ticket_id__in=ids).values_list(
        "suggestion__ticket_id", "decision_model_id"
    )
    return [(chosen[ticket_id], version) for ticket_id, version in stamps]


def _last_use_after(switch: datetime, version: int, ids: list[int]) -> timedelta:
    """How long after ``switch`` the old ``version`` still decided a ticket (zero if never)."""
    late = [when - switch for when, used in _decided_with(ids) if used == version and when > switch]
    return max(late, default=timedelta(0))


def test_promotion_and_roll_back_reach_every_worker_within_10_s_losing_nothing(
    history: dict[str, Category], workers: list[Worker], tmp_path: Path
) -> None:
    old = label_version(holdout_share=0.1, name="v1", accuracy=0.9)
    model_promote(decision_model_id=old.pk, to="active", actor="alice", reason="first")
    new = label_version(holdout_share=0.2, name="v2", accuracy=0.9)
    ids: list[int] = []
    _feed(ids, 12)  # both workers warm, deciding with v1

    promoted_at = timezone.now()
    model_promote(decision_model_id=new.pk, to="active", actor="alice", reason="retrained")
    _feed(ids, 14)
    rolled_back_at = timezone.now()
    model_roll_back(actor="bob", reason="worse on live traffic")
    _feed(ids, 14)

    _wait_for(lambda: _all_final(ids), timeout=180, what="every ticket routed", logs=tmp_path)
    _assert_processed_exactly_once(ids)  # 0 lost, 0 decided twice
    assert DecisionStamp.objects.filter(suggestion__ticket_id__in=ids).count() == len(ids)

    decided = _decided_with(ids)
    assert any(version == new.pk for when, version in decided if promoted_at < when < rolled_back_at)
    after_promotion = _last_use_after(promoted_at, old.pk, _ids_between(ids, promoted_at, rolled_back_at))
    after_roll_back = _last_use_after(rolled_back_at, new.pk, ids)
    assert after_promotion < SWITCH_WITHIN and after_roll_back < SWITCH_WITHIN
    assert any(version == old.pk for when, version in decided if when > rolled_back_at + SWITCH_WITHIN)
    print(
        f"previous version last used {after_promotion.total_seconds():.2f} s after the promotion, "
        f"{after_roll_back.total_seconds():.2f} s after the roll back ({len(ids)} tickets)"
    )


def _ids_between(ids: list[int], start: datetime, end: datetime) -> list[int]:
    chosen: dict[int, Any] = dict(
        AuditEvent.objects.filter(ticket_id__in=ids, action="retrieval.done").values_list(
            "ticket_id", "created_at"
        )
    )
    return [ticket_id for ticket_id in ids if start < chosen[ticket_id] < end]
