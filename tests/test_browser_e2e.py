"""End to end in a real headless Chromium: a requester submits a ticket through the form, a real
Celery worker routes it, an agent signs in, accepts the suggestion and resolves the ticket, and the
ticket joins the knowledge base. Screenshots of the pages land in test-artifacts/.

Debian's chromium package (installed by .ci/run) is driven by Playwright; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, connections

from tests.conftest import ROOT, worker_environment
from tests.ui_factories import PASSWORD, make_resolved_history, make_user
from tickets.audit import verify_chain
from tickets.models import Channel, Feedback, PipelineStage, Team, Ticket, TicketStatus
from tickets.pipeline.stages import worker_queues

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
PIPELINE_QUEUES = tuple(worker_queues(settings.CELERY_TASK_DEFAULT_QUEUE))

HISTORY = {
    # category: (team, resolution, past tickets)
    "Refund": (
        "Billing",
        "Refunded the duplicate charge to the original card; it shows within 5 working days.",
        [
            "I was billed two times for my March subscription, please refund one.",
            "My card shows the same payment twice this month.",
            "You took the money twice from my credit card for one order.",
            "There are two identical charges on my bank statement from you.",
        ],
    ),
    "VPN": (
        "Network",
        "Reinstalled the VPN profile and reset the token; the tunnel connects again.",
        [
            "The VPN client says the tunnel could not be established since this morning.",
            "GlobalProtect keeps disconnecting after a few seconds from home.",
            "My VPN token is rejected although I typed it right.",
            "I can't reach the office network over the VPN from my laptop.",
        ],
    ),
    "Password reset": (
        "Accounts",
        "Sent a password reset link and unlocked the account after identity checks.",
        [
            "I forgot my password and the account is locked after three attempts.",
            "Please reset my password, the reset e-mail never arrives.",
            "My account got locked, I need to sign in for a deadline today.",
            "How do I reset the password of my user account?",
        ],
    ),
}


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


@pytest.fixture
def company(knowledge_dir: Path) -> list[Team]:
    """Three teams with a small resolved history in the knowledge base."""
    history = {
        name: (team, resolution, [(body[:40], body) for body in bodies])
        for name, (team, resolution, bodies) in HISTORY.items()
    }
    return [category.default_team for category in make_resolved_history(history).values()]


@pytest.fixture
def worker(company: list[Team], knowledge_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A real Celery worker on every pipeline queue, sharing this test's database and knowledge base."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(*PIPELINE_QUEUES)  # nothing left over from other tests
    with _celery_worker(knowledge_dir, tmp_path / "worker.log") as log:
        yield log


@contextmanager
def _celery_worker(index_dir: Path, log: Path, **env: str) -> Iterator[Path]:
    command = [str(Path(sys.executable).parent / "celery"), "-A", "inference_app", "worker", "--pool=solo"]
    command += ["-Q", ",".join(PIPELINE_QUEUES), "-l", "INFO"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=worker_environment(index_dir, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            _let_sessions_end()


def _let_sessions_end(timeout: float = 15) -> None:
    """PostgreSQL ends a closed client's session a moment later; wait, so the test database can be dropped."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(query)
            row = cursor.fetchone()
        if row is not None and row[0] == 0:
            return
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def short_lived_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server's request threads close their connections, so the test database can be dropped."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            # ORM calls made while Playwright's loop runs get their own connections: close them here,
            # in the same context, or the test database cannot be dropped.
            connections.close_all()
            context.close()
            browser.close()


@pytest.fixture
def csp_violations(browser_page: Any) -> list[str]:
    """What Chromium reports blocked by the Content-Security-Policy, from every page this test opens."""
    found: list[str] = []

    def note(message: Any) -> None:
        if "Content Security Policy" in message.text:
            found.append(f"{browser_page.url}: {message.text}")

    browser_page.on("console", note)
    return found


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}/dashboard/")


def test_submit_route_accept_resolve_and_join_the_knowledge_base(
    live_server: Any, worker: Path, company: list[Team], browser_page: Any, csp_violations: list[str]
) -> None:
    from retrieval.models import KnowledgeEntry

    page, base = browser_page, live_server.url
    make_user("ann", teams=dict.fromkeys(company, "agent"))
    make_user("lee", teams=dict.fromkeys(company, "lead"))

    # 1. The requester submits a ticket through the form.
    page.goto(f"{base}/submit/")
    page.fill("#id_subject", "Charged twice for one order")
    page.fill(
        "#id_body", "You took the money twice from my credit card for one order, please refund one payment."
    )
    page.fill("#id_email", "ana@customer.example")
    _shot(page, "1-submission-form")
    page.click("#submit-form button[type=submit]")
    reference = page.text_content("#reference")
    ticket = Ticket.objects.get(reference=reference)
    assert ticket.channel == Channel.WEB

    # 2. She follows the status link and watches the page update itself until the ticket is routed.
    page.click("#status-link")
    page.wait_for_selector("#status-team", timeout=180_000)
    _wait_for(
        lambda: Ticket.objects.filter(pk=ticket.pk, stage=PipelineStage.DONE).exists(),
        timeout=30,
        what="pipeline",
        log=worker,
    )
    ticket.refresh_from_db()
    assert ticket.status in (TicketStatus.ROUTED, TicketStatus.NEEDS_TRIAGE), worker.read_text()[-3000:]
    if ticket.status == TicketStatus.ROUTED:
        assert page.text_content("#status-team").strip().endswith(f"{ticket.team.name} team.")  # type: ignore[union-attr]
    _shot(page, "2-requester-status")

    # 3. An agent signs in and finds it in her queue.
    _sign_in(page, base, "ann")
    assert reference in page.text_content("#queue")
    _shot(page, "3-queue")
    page.click(f"text={reference}")
    page.wait_for_selector("#suggestion-text")
    suggestion = ticket.suggestions.get()
    assert page.text_content("#confidence").strip() == f"{round(suggestion.confidence * 100)}%"
    _shot(page, "4-ticket-page")

    # 4. She accepts the suggestion (HTMX swaps the page part) and resolves with it.
    page.click("#action-accept button[type=submit]")
    page.wait_for_selector("#action-message:has-text('Suggestion accepted.')")
    resolution = page.input_value("#action-resolve textarea")
    if not resolution.strip():  # a suggestion without a reply: write one
        page.fill("#action-resolve textarea", "Refunded the duplicate charge.")
    page.click("#action-resolve button[type=submit]")
    page.wait_for_selector("#action-message:has-text('Ticket resolved')")
    assert "suggestion.accepted" in page.text_content("#timeline")
    _shot(page, "5-ticket-resolved")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    assert set(Feedback.objects.filter(ticket=ticket).values_list("kind", flat=True)) == {
        "accepted",
        "resolved",
    }
    assert list(verify_chain(ticket.audit_events.order_by("sequence"))) == []

    # 5. The worker adds the resolved ticket to the knowledge base.
    _wait_for(
        lambda: KnowledgeEntry.objects.filter(doc_id=ticket.pk, deleted=False).exists(),
        timeout=60,
        what="the ticket to join the knowledge base",
        log=worker,
    )
    entry = KnowledgeEntry.objects.get(doc_id=ticket.pk)
    assert "money twice" in entry.text and entry.embedding

    # 6. The requester sees the resolution; the lead sees the analytics.
    page.goto(f"{base}/status/{ticket.status_token}/")
    assert ticket.resolution[:40] in page.text_content("#resolution")
    page.click("header.site button.link")  # sign out
    _sign_in(page, base, "lee")
    page.goto(f"{base}/analytics/")
    assert page.locator("svg.chart").count() >= 5
    _shot(page, "6-analytics")
    assert csp_violations == []  # every page above ran under the policy with nothing blocked


def test_the_demo_duplicate_charge_ticket_suggests_refunding_the_duplicate(
    live_server: Any, knowledge_dir: Path, tmp_path: Path, browser_page: Any
) -> None:
    """As after ``make demo``: the demo loads, the label model is trained, then a worker processes the
    incoming tickets; the agent opening the (German) duplicate-charge ticket is offered a refund of the
    duplicate, not the plan switch of issue 13."""
    from retrieval.label_services import train_label_model
    from tickets.demo import content as demo_content
    from tickets.demo.generator import load_demo

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*PIPELINE_QUEUES)
    load_demo(data_dir=tmp_path)  # the incoming tickets wait in the queues
    assert train_label_model().trained
    [number] = [
        number
        for number, incoming in enumerate(demo_content.INCOMING_PROBLEMS, start=1)
        if "Refund for duplicate charge" in incoming.problems
    ]
    ticket = Ticket.objects.get(channel=Channel.DEMO, external_id=f"demo-new-{number:02d}")
    # The model is left out so the suggestion is the stored answer chosen from retrieval, as tested.
    with _celery_worker(knowledge_dir, tmp_path / "worker.log", PIPELINE_USE_MODEL="never") as log:
        _wait_for(
            lambda: Ticket.objects.filter(pk=ticket.pk, stage=PipelineStage.DONE).exists(),
            timeout=240,
            what="the demo ticket to be processed",
            log=log,
        )
    page, base = browser_page, live_server.url
    make_user("root", superuser=True)
    _sign_in(page, base, "root")
    page.goto(f"{base}/tickets/{ticket.pk}/")
    text = page.text_content("#suggestion-text") or ""
    _shot(page, "demo-duplicate-charge")
    assert re.search(r"doppelte Zahlung|zweite Abbuchung|duplicate|charged twice", text, re.IGNORECASE), text
    assert re.search(r"erstatt|refund", text, re.IGNORECASE), text
    assert not re.search(r"annual|monthly|jährlich|monatlich", text, re.IGNORECASE), text


def test_the_pages_work_on_a_phone_sized_screen(live_server: Any, browser_page: Any) -> None:
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/submit/")
    page.click("#submit-form button[type=submit]")  # empty: errors next to the fields
    assert page.locator(".field.invalid").count() == 3
    # Nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, "0-submission-form-phone-errors")


def test_the_admin_and_the_api_docs_work_under_the_content_security_policy(
    live_server: Any, browser_page: Any, csp_violations: list[str]
) -> None:
    page, base = browser_page, live_server.url
    make_user("root", superuser=True)
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form input[type=submit]")
    page.wait_for_selector("#content-main")
    page.goto(f"{base}/admin/tickets/ticket/add/")
    page.wait_for_selector("#ticket_form")
    page.goto(f"{base}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)  # Swagger UI drew the operations
    _shot(page, "7-api-docs")
    assert csp_violations == []
    page.goto(f"{base}/api/v1/redoc/")
    page.wait_for_selector("redoc h1", timeout=60_000)  # Redoc drew the document
    page.wait_for_load_state("networkidle")
    # Redoc's bundle fetches its vendor's logo from a CDN for its "API docs by Redocly" link: blocked,
    # as every third-party load is (Redoc hides the image); nothing else on the page is.
    assert all("https://cdn.redoc.ly/" in violation for violation in csp_violations), csp_violations


def test_an_abstained_suggestion_shows_the_similar_tickets_instead_of_a_reply(
    live_server: Any, browser_page: Any, csp_violations: list[str]
) -> None:
    from tests.ui_factories import make_category, make_suggestion, make_team, make_ticket

    billing = make_team("Billing")
    refunds = make_category("Refund request", billing)
    make_user("ann", teams={billing: "agent"})
    similar = [
        make_ticket(subject=subject, body=body, team=billing, category=refunds, status=TicketStatus.RESOLVED)
        for subject, body in (
            ("Double charge on my March invoice", "I was billed twice for March."),
            ("Refund after cancelling within 14 days", "I cancelled on day 3, where is my refund?"),
        )
    ]
    ticket = make_ticket(
        subject="Charged <b>twice</b>, order ORD-5521",
        body="My card was charged two times for order ORD-5521, 49.99 each.",
        team=billing,
        category=refunds,
    )
    make_suggestion(
        ticket,
        team=billing,
        category=refunds,
        confidence=0.97,
        text="",
        suggestion_confidence=0.38,
        abstained=True,
        evidence={
            "neighbours": [
                {"doc_id": past.pk, "category": "Refund request", "score": score}
                for past, score in zip(similar, (0.86, 0.71), strict=True)
            ]
        },
    )
    page = browser_page
    _sign_in(page, live_server.url, "ann")
    page.goto(f"{live_server.url}/tickets/{ticket.pk}/")
    assert "No suggestion good enough" in page.inner_text("#suggestion-abstained")
    assert page.inner_text("#suggestion-band") == "low"
    links = page.locator("#similar-tickets a")
    assert links.count() == 2 and "Double charge on my March invoice" in links.first.inner_text()
    assert page.locator("#action-accept").count() == 0 and page.locator("#action-resolve").count() == 1
    assert "Charged <b>twice</b>" in page.inner_text("h1")  # shown as text, not markup
    page.locator("#similar-tickets details summary").first.click()  # its resolution, inline
    _shot(page, "6-abstained-suggestion-similar-tickets")
    links.first.click()
    page.wait_for_url(f"{live_server.url}/tickets/{similar[0].pk}/")
    assert "Done it." in page.inner_text("#final-resolution")
    assert csp_violations == []
