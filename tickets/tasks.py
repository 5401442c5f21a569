"""Celery tasks of the tickets app. Thin: they take ids and call services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from tickets.knowledge import sync_ticket


@shared_task(
    name="tickets.sync_ticket_knowledge",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=8,
)
def sync_ticket_knowledge(ticket_id: int) -> str:
    """Index a resolved ticket, or drop a reopened one, in the knowledge base. Idempotent."""
    return sync_ticket(ticket_id=ticket_id)
