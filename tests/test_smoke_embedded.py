"""A fresh install with nothing configured: SQLite, the filesystem broker, a worker and the web app."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
