"""Loads the demo company: teams, categories, agents, resolved past tickets and new incoming ones.

Everything is generated from the hand-written content in ``tickets.demo.content`` with a fixed seed,
so every load produces the same company. Loading is idempotent: rows are keyed by name or by the
ticket's demo external id, and a second load only fills in what is missing.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tickets.audit import record_event, text_fingerprint
from tickets.demo import content
from tickets.models import (
    AuditEvent,
    Category,
    Channel,
    PipelineStage,
    Team,
    TeamMembership,
    Ticket,
    TicketStatus,
)
from tickets.pipeline.text import prepare
from tickets.services.knowledge import index_missing_resolved
from tickets.services.submission import ticket_submit

PAST_TICKETS = 360
MIN_PER_PROBLEM = 2
SEED = 20261126

PRODUCTS = ("Q3 launch", "Website redesign", "Client onboarding", "Warehouse move", "Annual audit")
DEVICES = ("MacBook Air M2", "ThinkPad T14", "Dell XPS 13", "Surface Laptop 5", "iPhone 15", "Pixel 8")
BROWSERS = ("Firefox 131", "Chrome 130", "Safari 18", "Edge 129")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "September", "October")


@dataclass
class DemoSummary:
    teams: int = 0
    categories: int = 0
    users_created: int = 0
    past_created: int = 0
    incoming_created: int = 0
    indexed: int = 0
    admin_password: str | None = None


def _values(rng: random.Random, first_name: str) -> dict[str, str]:
    """One ticket's placeholder values, shared by its problem and its resolution."""
    return {
        "name": first_name,
        "invoice": f"INV-{rng.randint(10000, 99999)}",
        "project": rng.choice(PRODUCTS),
        "device": rng.choice(DEVICES),
        "browser": rng.choice(BROWSERS),
        "amount": f"{rng.randint(9, 900)}.{rng.choice(('00', '50', '99'))}",
        "date": f"{rng.randint(1, 28)} {rng.choice(MONTHS)}",
    }


def _load_teams_and_categories() -> dict[str, Category]:
    teams = {}
    for demo_team in content.TEAMS:
        team, _ = Team.objects.update_or_create(
            name=demo_team.name, defaults={"description": demo_team.description}
        )
        teams[team.name] = team
    categories = {}
    for demo_category in content.CATEGORIES:
        category, _ = Category.objects.update_or_create(
            name=demo_category.name,
            defaults={
                "description": demo_category.description,
                "default_team": teams[demo_category.team],
                "default_priority": demo_category.priority,
                "sla_hours": demo_category.sla_hours,
            },
        )
        categories[category.name] = category
    return categories


def _load_users(summary: DemoSummary, credentials_file: Path) -> None:
    """An admin and one agent per team, sharing one generated password kept in the data directory."""
    user_model = get_user_model()
    if credentials_file.is_file():
        password = credentials_file.read_text(encoding="utf-8").strip()
    else:
        password = secrets.token_urlsafe(12)
        credentials_file.write_text(password + "\n", encoding="utf-8")
        credentials_file.chmod(0o600)
    summary.admin_password = password
    if not user_model.objects.filter(username="admin").exists():
        user_model.objects.create_superuser("admin", "admin@example.com", password)
        summary.users_created += 1
    for index, team in enumerate(Team.objects.order_by("name")):
        username = f"agent.{slugify(team.name)}"
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"first_name": content.FIRST_NAMES[index], "email": f"{username}@example.com"},
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
            summary.users_created += 1
        TeamMembership.objects.get_or_create(team=team, user=user)


@dataclass(frozen=True)
class PastTicket:
    external_id: str
    category: content.DemoCategory
    problem: content.DemoProblem
    subject: str
    body: str
    resolution: str
    requester: str
    created: datetime


def _problem_schedule(rng: random.Random) -> list[tuple[content.DemoCategory, content.DemoProblem]]:
    """Which problem each past ticket is: every problem at least MIN_PER_PROBLEM times (so each has
    past tickets whose resolution fits it), the rest drawn at random, in a shuffled order."""
    pairs = [(category, problem) for category in content.CATEGORIES for problem in category.problems]
    schedule = pairs * MIN_PER_PROBLEM
    if len(schedule) > PAST_TICKETS:
        raise ValueError(f"{len(pairs)} demo problems do not fit {PAST_TICKETS} past tickets")
    schedule += [rng.choice(pairs) for _ in range(PAST_TICKETS - len(schedule))]
    rng.shuffle(schedule)
    return schedule


def past_tickets(now: datetime) -> list[PastTicket]:
    """Every past ticket, the same on every call (the seed), each answered by a resolution of its problem."""
    rng = random.Random(SEED)
    rows = []
    for number, (category, problem) in enumerate(_problem_schedule(rng), start=1):
        first, last = rng.choice(content.FIRST_NAMES), rng.choice(content.LAST_NAMES)
        created = now - timedelta(days=rng.randint(2, 180), minutes=rng.randint(0, 1440))
        values = _values(rng, first)
        rows.append(
            PastTicket(
                external_id=f"demo-past-{number:04d}",
                category=category,
                problem=problem,
                subject=problem.subject.format(**values),
                body=problem.body.format(**values),
                resolution=rng.choice(problem.resolutions).format(**values),
                requester=f"{first} {last}",
                created=created,
            )
        )
    return rows


def load_demo(*, data_dir: Path, progress: Callable[[str], None] = lambda message: None) -> DemoSummary:
    summary = DemoSummary()
    with transaction.atomic():
        categories = _load_teams_and_categories()
        summary.teams, summary.categories = len(content.TEAMS), len(categories)
        _load_users(summary, data_dir / "demo-password.txt")
    progress(f"{summary.teams} teams, {summary.categories} categories")

    now = timezone.now()
    existing = set(Ticket.objects.filter(channel=Channel.DEMO).values_list("external_id", flat=True))
    for row in past_tickets(now):
        external_id, created = row.external_id, row.created
        if external_id in existing:
            continue
        category = categories[row.category.name]
        with transaction.atomic():
            resolved = created + timedelta(
                hours=random.Random(external_id).randint(1, row.category.sla_hours)
            )
            ticket = Ticket.objects.create(
                subject=row.subject,
                body=row.body,
                requester_name=row.requester,
                requester_email=f"{row.requester.split()[0].lower()}@customer.example",
                channel=Channel.DEMO,
                external_id=external_id,
                status=TicketStatus.RESOLVED,
                stage=PipelineStage.DONE,
                team_id=category.default_team_id,
                category=category,
                priority=category.default_priority,
                resolution=row.resolution,
                language=prepare(subject=row.subject, body=row.body).language,
                created_at=created,
                status_changed_at=resolved,
                resolved_at=resolved,
                due_at=created + timedelta(hours=category.sla_hours),
            )
            record_event(
                ticket_id=ticket.pk,
                stage=AuditEvent.Stage.INTAKE,
                action="ticket.imported",
                actor="load_demo",
                details={
                    "source": "demo",
                    "external_id": external_id,
                    "body_sha256": text_fingerprint(row.body),
                    "category": category.name,
                    "status": TicketStatus.RESOLVED,
                },
            )
        summary.past_created += 1
    progress(f"{summary.past_created} past tickets created")
    summary.indexed = index_missing_resolved()
    progress(f"{summary.indexed} resolved tickets added to the knowledge base")

    for number, (subject, body, _category_name) in enumerate(content.INCOMING, start=1):
        external_id = f"demo-new-{number:02d}"
        if external_id in existing:
            continue
        ticket_submit(
            subject=subject,
            body=body,
            requester_name="Demo requester",
            requester_email=f"requester{number}@customer.example",
            channel=Channel.DEMO,
            external_id=external_id,
            actor="load_demo",
        )
        summary.incoming_created += 1
    progress(f"{summary.incoming_created} incoming tickets created")
    return summary
