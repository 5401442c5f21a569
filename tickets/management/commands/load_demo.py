"""``python manage.py load_demo``: load the demo company (idempotent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tickets.demo.generator import load_demo


class Command(BaseCommand):
    help = "Load the demo company: teams, categories, agents, resolved past tickets and new ones. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = load_demo(data_dir=settings.DATA_DIR, progress=lambda message: self.stdout.write(message))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo company loaded: {summary.teams} teams, {summary.categories} categories, "
                f"{summary.past_created} past and {summary.incoming_created} new tickets added, "
                f"{summary.users_created} users created."
            )
        )
        self.stdout.write(
            f"Sign in at /admin/ as 'admin' (or an agent such as 'agent.billing') with the password "
            f"{summary.admin_password!r} (kept in {settings.DATA_DIR / 'demo-password.txt'})."
        )
