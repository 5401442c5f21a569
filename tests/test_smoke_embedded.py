"""A fresh install with nothing configured: SQLite, the filesystem broker, a worker and the web app."""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, embedded_env, run_manage, run_python
from tickets.demo import content as demo_content

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def embedded_install(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = embedded_env(tmp_path / "data")
    migrate = run_manage("migrate", "--no-input", env=env)
    assert migrate.returncode == 0, migrate.stderr
    yield env


def test_fresh_install_serves_the_demo_company_and_runs_tasks(embedded_install: dict[str, str]) -> None:
    env = embedded_install
    data_dir = Path(env["SWITCHBOARD_DATA_DIR"])
    loaded = run_manage("load_demo", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "Demo company loaded" in loaded.stdout
    assert (data_dir / "switchboard.sqlite3").is_file()
    trained = run_manage("train_classifier", env=env)
    assert trained.returncode == 0, trained.stderr

    queues = run_manage("pipeline_queues", env=env)  # as scripts/demo.sh asks for them
    assert queues.returncode == 0, queues.stderr
    assert queues.stdout.strip() == "switchboard,ingest,model,output,shadow"
    port = _free_port()
    processes = [
        subprocess.Popen(
            [
                str(VENV_BIN / "celery"),
                "-A",
                "inference_app",
                "worker",
                "--pool=solo",
                f"--queues={queues.stdout.strip()}",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "inference_app.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=ROOT,
            env=env,
        ),
    ]
    try:
        # A task goes through the filesystem broker to the worker and its answer comes back.
        answer = run_python(
            "from inference_app.celery import ping; print(ping.delay().get(timeout=90))", env=env
        )
        assert answer.stdout.strip() == "pong", answer.stderr
        assert any((data_dir / "broker").rglob("*")), "the filesystem broker wrote nothing"
        assert not (ROOT / "control").exists(), "the broker wrote outside the data directory"

        # The demo's incoming tickets, enqueued when it was loaded, go through the whole pipeline.
        processed = run_python(
            "import time, django; django.setup()\n"
            "from tickets.models import Ticket\n"
            "final = ['resolved', 'routed', 'needs_triage']\n"
            "waiting = Ticket.objects.filter(channel='demo').exclude(status__in=final)\n"
            "deadline = time.time() + 240\n"
            "while waiting.exists() and time.time() < deadline: time.sleep(1)\n"
            "print(Ticket.objects.filter(channel='demo', stage='done').exclude(status='resolved').count())",
            env=env,
            timeout=300,
        )
        assert processed.stdout.strip() == str(len(demo_content.INCOMING)), processed.stderr

        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login_page = opener.open(f"{base}/admin/login/").read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
        assert csrf, "no CSRF token on the admin login page"
        password = (data_dir / "demo-password.txt").read_text().strip()
        form = urllib.parse.urlencode(
            {
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": csrf.group(1),
                "next": "/admin/",
            }
        ).encode()
        opener.open(urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": base}))
        teams_page = opener.open(f"{base}/admin/tickets/team/").read().decode()
        for team in demo_content.TEAMS:
            assert team.name.replace("&", "&amp;") in teams_page
        tickets_page = opener.open(f"{base}/admin/tickets/ticket/").read().decode()
        assert "tickets" in tickets_page.lower() and "SB-" in tickets_page
        _api_creates_on_sqlite(base, env)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _api_creates_on_sqlite(base: str, env: dict[str, str]) -> None:
    """The API's writes that PostgreSQL does in one statement or by COPY, here on SQLite's fallbacks:
    a keyed create and its replay, a taken external id, a batch with a replayed item."""
    made = run_python(
        "import django; django.setup()\n"
        "from tickets.services.api_tokens import token_create\n"
        "print(token_create(name='smoke', scopes=['read', 'write'])[1])",
        env=env,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]

    def post(path: str, body: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    ticket = {"subject": "Card declined", "body": "My card is declined at checkout.", "external_id": "SQ-1"}
    status, created = post("/api/v1/tickets", ticket, key="sq-key-1")
    assert status == 201, created
    status, replayed = post("/api/v1/tickets", ticket, key="sq-key-1")
    assert (status, replayed["id"]) == (200, created["id"]), replayed
    status, taken = post("/api/v1/tickets", ticket, key="sq-key-2")
    assert status == 409 and taken["error"]["code"] == "duplicate_external_id", taken
    items = [
        ticket,  # the same ticket again: replayed
        {**ticket, "external_id": "SQ-2"},
        {**ticket, "external_id": "SQ-3"},
        {**ticket, "body": "Another text.", "external_id": "SQ-1"},  # item 0's external id again
    ]
    status, batch = post("/api/v1/tickets/batch", {"items": items})
    assert status == 200, batch
    results = [item["result"] for item in batch["results"]]
    assert results == ["replayed", "created", "created", "rejected"], batch
    assert batch["results"][3]["error"]["code"] == "duplicate_in_batch", batch
    counted = run_python(
        "import django; django.setup()\n"
        "from tickets.audit import verify_chain\n"
        "from tickets.models import AuditEvent, IdempotencyKey, Ticket\n"
        "api = Ticket.objects.filter(channel='api').order_by('external_id')\n"
        "events = AuditEvent.objects.filter(ticket__in=api, action='ticket.created')\n"
        "bad = [t.pk for t in api if list(verify_chain(AuditEvent.objects.filter(ticket=t)))]\n"
        "print(list(api.values_list('external_id', flat=True)), events.count(),\n"
        "      IdempotencyKey.objects.filter(key__startswith='sq-key').count(), bad)",
        env=env,
    )
    assert counted.stdout.strip() == "['SQ-1', 'SQ-2', 'SQ-3'] 3 1 []", counted.stderr
