"""The creation path with the real Redis broker unreachable at commit (a closed port): a ticket created
through the API, alone or in a batch, is saved with its audit trail and idempotency key and answered
as created; the sweeper sends it into the pipeline once the broker is back."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.conftest import run_python
from tickets.models import AuditEvent, IdempotencyKey, PipelineStage, Ticket, TicketStatus
from tickets.pipeline import flow

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CLIENT = """
import json, django
django.setup()
from django.test import Client
from tickets.services.api_tokens import token_create
secret = token_create(name="broker-down", scopes=["read", "write"])[1]
client = Client(HTTP_AUTHORIZATION="Bearer " + secret)
single = client.post(
    "/api/v1/tickets",
    {"subject": "VPN down", "body": "The VPN drops every minute.", "external_id": "BD-1"},
    content_type="application/json",
    HTTP_IDEMPOTENCY_KEY="bd-key-1",
)
batch = client.post(
    "/api/v1/tickets/batch",
    {"items": [{"subject": "Mail down", "body": "No mail since noon.", "external_id": "BD-2"}]},
    content_type="application/json",
)
created = batch.json()["created"]
print(json.dumps({"single": single.status_code, "batch": batch.status_code, "created": created}))
"""


def _ingest_messages(broker: redis.Redis) -> list[list[int]]:
    batches = []
    for raw in reversed(broker.lrange("ingest", 0, -1)):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        batches.append([args[0], *(args[1] if len(args) > 1 else [])])
    return batches


@pytest.mark.parametrize("linger_ms", ["0", "50"], ids=["sent-in-the-request", "sent-by-the-starter-thread"])
def test_a_broker_down_at_commit_loses_no_ticket_and_the_sweeper_starts_them(
    tmp_path: Any, linger_ms: str
) -> None:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        # 50: the ids go to the starter thread, whose publish fails after the answers (or at exit)
        "PIPELINE_ENQUEUE_LINGER_MS": linger_ms,
    }
    result = run_python(CLIENT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"single": 201, "batch": 200, "created": 1}
    assert "Connection refused" in result.stderr or "Error 111" in result.stderr

    tickets = list(Ticket.objects.filter(external_id__in=["BD-1", "BD-2"]).order_by("external_id"))
    assert [(t.status, t.stage) for t in tickets] == [(TicketStatus.RECEIVED, PipelineStage.QUEUED)] * 2
    for ticket in tickets:
        assert AuditEvent.objects.filter(ticket=ticket, action="ticket.created").count() == 1
    assert IdempotencyKey.objects.get(key="bd-key-1").ticket_id == tickets[0].pk

    # The broker is back (this process's: the real Redis); the sweeper finds them once they are late.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("ingest")
    try:
        assert flow.sweep_stuck_tickets() == 0  # not late yet
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(
            updated_at=timezone.now() - timedelta(seconds=settings.PIPELINE_REQUEUE_AFTER_SECONDS + 1)
        )
        assert flow.sweep_stuck_tickets() == 2
        [message] = _ingest_messages(broker)  # one message for the two
        assert sorted(message) == [t.pk for t in tickets]
    finally:
        broker.delete("ingest")
