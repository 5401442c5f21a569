"""Record the language of resolved tickets imported before imports detected it, so the rule that sends
tickets in a language the history lacks to triage (LANGUAGE_MIN_HISTORY_TICKETS) counts the whole
history, not only the tickets the pipeline processed. About 1 ms a ticket."""

from __future__ import annotations

from typing import Any

from django.db import migrations

BATCH = 1000


def backfill(apps: Any, schema_editor: Any) -> None:
    from tickets.pipeline.text import prepare

    ticket_model = apps.get_model("tickets", "Ticket")
    pending = ticket_model.objects.filter(status__in=("resolved", "closed"), language="").order_by("pk")
    last = 0
    while True:
        batch = list(pending.filter(pk__gt=last).only("pk", "subject", "body")[:BATCH])
        if not batch:
            return
        for ticket in batch:
            ticket.language = prepare(subject=ticket.subject, body=ticket.body).language
        ticket_model.objects.bulk_update(batch, ["language"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("tickets", "0006_emerging_topics")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
