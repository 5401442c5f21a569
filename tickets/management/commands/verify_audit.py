"""``python manage.py verify_audit``: check every ticket's hash-chained audit trail."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tickets.audit import verify_chain
from tickets.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero and names each break if one is found."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ticket", type=int, help="Only this ticket id.")

    def handle(self, *args: Any, **options: Any) -> None:
        events = AuditEvent.objects.order_by("ticket_id", "sequence")
        if options["ticket"]:
            events = events.filter(ticket_id=options["ticket"])
        breaks = list(verify_chain(events.iterator(chunk_size=2000)))
        checked = events.count()
        for problem in breaks:
            self.stderr.write(f"ticket {problem.ticket_id} event #{problem.sequence}: {problem.reason}")
        if breaks:
            raise CommandError(f"{len(breaks)} break(s) in the audit trail ({checked} events checked)")
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} events checked."))
