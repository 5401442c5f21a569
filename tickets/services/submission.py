"""Submitting a new ticket: the one way in for the web form, the REST API and the demo.

The ticket and its first audit event are saved in one transaction; the pipeline starts once that
commits. A broker that is down at that moment does not lose the ticket or fail the request: the error
is logged and the sweeper (``tickets.pipeline.flow.sweep_stuck_tickets``) starts the ticket later.
"""

from __future__ import annotations

from typing import Any

from tickets.models import Ticket
from tickets.pipeline import flow
from tickets.services.lifecycle import ticket_create


def ticket_submit(**fields: Any) -> Ticket:
    """Create a ticket (the fields of :func:`~tickets.services.lifecycle.ticket_create`) and start the
    pipeline on it once it is committed."""
    # ticket_create is atomic itself; the pipeline's start waits for the commit of the outermost
    # transaction (at once when there is none). No wrapping block: a savepoint less.
    ticket = ticket_create(**fields)
    flow.enqueue_ticket(ticket.pk)
    return ticket
