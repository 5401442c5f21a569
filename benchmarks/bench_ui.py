"""Server-side render time of the web UI's pages on a large ticket history, against PostgreSQL.

    python benchmarks/bench_ui.py                     # 50,000 tickets, 10 renders per page
    python benchmarks/bench_ui.py --tickets 200000 --repeat 5

It makes a fresh database (``--database``, dropped and re-created), migrates it, bulk-loads the
tickets (over the last 90 days, six teams, a suggestion, four timed audit events, a model call and
some feedback each), then renders each page in-process with Django's test client, signed in as an
agent and as an admin, and prints the median and slowest render time per page with its query count.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fresh_database(name: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def load(count: int, seed: int = 7) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from tqdm import tqdm

    from tickets.audit import build_event, first_event
    from tickets.models import Category, Feedback, ModelCall, Suggestion, Team, TeamMembership, Ticket

    rng = random.Random(seed)
    teams = [Team.objects.create(name=f"Team {n}") for n in range(6)]
    categories = [Category.objects.create(name=f"Category {n}", default_team=teams[n % 6]) for n in range(22)]
    users = get_user_model()
    users.objects.create_superuser("admin", "admin@example.com", "bench-password")
    agent = users.objects.create_user("agent", "agent@example.com", "bench-password")
    TeamMembership.objects.create(team=teams[0], user=agent)
    now = timezone.now()
    statuses = ["routed"] * 5 + ["needs_triage"] * 2 + ["resolved"] * 3
    batch = 2000
    for start in tqdm(range(0, count, batch), desc="tickets", unit_scale=batch):
        size = min(batch, count - start)
        tickets = []
        for _ in range(size):
            category = rng.choice(categories)
            created = now - timedelta(minutes=rng.randint(0, 90 * 24 * 60))
            tickets.append(
                Ticket(
                    subject=f"Problem {rng.randint(1, 10**6)} with {category.name}",
                    body="The customer describes the problem in a few sentences. " * 3,
                    requester_email="someone@example.com",
                    status=rng.choice(statuses),
                    stage="done",
                    team_id=category.default_team_id,
                    category=category,
                    priority=rng.choice(["low", "normal", "normal", "high", "urgent"]),
                    created_at=created,
                    due_at=created + timedelta(hours=24),
                    auto_routed=rng.random() < 0.6,
                    language="en",
                )
            )
        Ticket.objects.bulk_create(tickets)
        Suggestion.objects.bulk_create(
            Suggestion(ticket=t, team_id=t.team_id, category=t.category, confidence=rng.random())
            for t in tickets
        )
        events = []
        for ticket in tickets:
            event = first_event(ticket_id=ticket.pk, stage="intake", action="ticket.created")
            events.append(event)
            for sequence, stage in enumerate(("input", "retrieval", "model", "routing"), start=2):
                event = build_event(
                    ticket_id=ticket.pk,
                    sequence=sequence,
                    prev_hash=event.hash,
                    stage=stage,
                    action=f"{stage}.done",
                    details={"latency_ms": rng.uniform(5, 1500)},
                )
                events.append(event)
        from tickets.models import AuditEvent

        AuditEvent.objects.bulk_create(events)
        ModelCall.objects.bulk_create(
            ModelCall(
                ticket=t,
                purpose="classify",
                backend="llamacpp",
                model_name="m",
                prompt_tokens=rng.randint(200, 900),
                completion_tokens=40,
                outcome="ok",
                cost_usd=Decimal("0.0004"),
                created_at=t.created_at,
            )
            for t in tickets
        )
        Feedback.objects.bulk_create(
            Feedback(ticket=t, kind="accepted", routing_correct=rng.random() < 0.85, created_at=t.created_at)
            for t in tickets
            if rng.random() < 0.3
        )


def measure(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Ticket

    agent_ticket = Ticket.objects.filter(team__name="Team 0").order_by("-created_at").first()
    assert agent_ticket is not None
    pages = [
        ("agent", "dashboard (open, newest)", "/dashboard/"),
        ("agent", "dashboard live refresh (HTMX)", "/dashboard/?queue=triage"),
        ("agent", "dashboard search", "/dashboard/?q=Problem%2012&status="),
        ("agent", "dashboard sort by confidence", "/dashboard/?sort=confidence&status="),
        ("agent", "ticket page", f"/tickets/{agent_ticket.pk}/"),
        ("admin", "dashboard (all teams)", "/dashboard/"),
        ("admin", "analytics, 30 days", "/analytics/"),
        ("admin", "analytics, 90 days", "/analytics/?days=90"),
    ]
    clients = {}
    for name in ("agent", "admin"):
        client = Client()
        client.force_login(get_user_model().objects.get(username=name))
        clients[name] = client
    print(f"{'page':34} {'user':6} {'median ms':>10} {'max ms':>8} {'queries':>8}")
    for user, label, url in pages:
        htmx = "HTMX" in label
        timings = []
        queries = 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = clients[user].get(url, HTTP_HX_REQUEST="true") if htmx else clients[user].get(url)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries = len(captured)
        print(f"{label:34} {user:6} {statistics.median(timings):10.1f} {max(timings):8.1f} {queries:8d}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database", default="sb_bench_ui")
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        DJANGO_SETTINGS_MODULE="inference_app.settings",
        LOG_LEVEL="warning",
    )
    os.environ.setdefault("SWITCHBOARD_DATA_DIR", str(ROOT / "var" / "bench-ui"))
    fresh_database(args.database)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=os.environ, check=True)
    import django

    django.setup()
    started = time.perf_counter()
    load(args.tickets)
    print(f"loaded {args.tickets} tickets in {time.perf_counter() - started:.0f} s")
    measure(args.repeat)


if __name__ == "__main__":
    main()
