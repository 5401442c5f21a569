"""Structured logs: JSON lines with the request id (web and Celery worker) and the ticket id."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from inference_app.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    current_context,
    log_context,
    logging_config,
)
from tests.conftest import ROOT, embedded_env, run_python


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object (a worker also prints a plain start-up banner)."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler with the production formatter and filter on a private logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    target = logging.getLogger("tests.captured")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    target.propagate = False
    yield stream
    target.removeHandler(handler)


def test_json_lines_carry_the_bound_ticket_id_and_extras(captured: io.StringIO) -> None:
    target = logging.getLogger("tests.captured")
    with log_context(ticket_id=42):
        target.info("routed to %s", "billing", extra={"confidence": 0.91})
        with log_context(request_id="req-1"):
            target.warning("nested")
        assert current_context() == {"ticket_id": 42}
    target.info("outside")
    assert current_context() == {}
    first, nested, outside = json_lines(captured.getvalue())
    assert first["message"] == "routed to billing"
    assert first["ticket_id"] == 42 and first["confidence"] == 0.91
    assert first["level"] == "info" and first["logger"] == "tests.captured"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", first["ts"])
    assert (nested["ticket_id"], nested["request_id"]) == (42, "req-1")
    assert "ticket_id" not in outside and "request_id" not in outside


def test_exceptions_are_one_json_line(captured: io.StringIO) -> None:
    target = logging.getLogger("tests.captured")
    try:
        raise ValueError("bad input")
    except ValueError:
        target.exception("failed")
    (entry,) = json_lines(captured.getvalue())
    assert entry["level"] == "error"
    assert "ValueError: bad input" in entry["exception"]


def test_text_format_shows_the_same_fields() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello", "ticket_id": 7})
    with log_context(request_id="abc"):
        line = TextFormatter().format(record)
    assert line.endswith("hello request_id=abc ticket_id=7")


def test_logging_config_follows_log_format() -> None:
    assert logging_config(log_format="json", level="INFO")["handlers"]["console"]["formatter"] == "json"
    assert logging_config(log_format="text", level="INFO")["handlers"]["console"]["formatter"] == "text"


WEB_PROBE = """
import django
django.setup()
from django.test import Client
client = Client()
kept = client.get('/healthz', HTTP_X_REQUEST_ID='req-abc.123')
made = client.get('/healthz', HTTP_X_REQUEST_ID='bad id <script>')
missing = client.get('/no-such-page')
print('HEADERS', kept['X-Request-ID'], made['X-Request-ID'], missing['X-Request-ID'])
"""


def test_web_requests_log_json_lines_with_their_request_id(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    env["LOG_FORMAT"] = "json"
    result = run_python(WEB_PROBE, env=env)
    assert result.returncode == 0, result.stderr
    kept, made, missing = result.stdout.split("HEADERS ")[1].split()
    assert kept == "req-abc.123"
    assert re.fullmatch(r"[0-9a-f]{32}", made) and re.fullmatch(r"[0-9a-f]{32}", missing)
    requests = [entry for entry in json_lines(result.stderr) if entry["logger"] == "switchboard.request"]
    assert [(entry["request_id"], entry["status"]) for entry in requests] == [
        (kept, 200),
        (made, 200),
        (missing, 404),
    ]
    assert requests[0]["route"] == "healthz" and requests[0]["path"] == "/healthz"
    assert requests[2]["route"] == ""
    # Django's own warning about the 404 carries the same id, though it is written after the middleware.
    not_found = [entry for entry in json_lines(result.stderr) if entry["logger"] == "django.request"]
    assert [entry["request_id"] for entry in not_found] == [missing]


@pytest.mark.slow
def test_a_worker_logs_the_request_id_that_enqueued_the_task_and_its_ticket_id(tmp_path: Path) -> None:
    """A real worker on the real Redis broker, logging JSON to a file we read back."""
    from tests.log_probe_tasks import log_probe

    assert str(settings.CELERY_BROKER_URL).startswith("redis://")
    env = os.environ.copy()
    env["LOG_FORMAT"] = "json"
    log_file = tmp_path / "worker.log"
    with log_file.open("w") as sink:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "inference_app",
                "worker",
                "--pool=solo",
                "--include",
                "tests.log_probe_tasks",
                "--queues",
                "log-probe",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            with log_context(request_id="req-from-web-7"):
                result = log_probe.apply_async((314,), {"note": "hello"}, queue="log-probe")
            assert result.get(timeout=90) == "logged 314"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "probe task ran" not in log_file.read_text():
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    entries = json_lines(log_file.read_text())
    (probe,) = [entry for entry in entries if entry["logger"] == "tests.log_probe"]
    assert probe["message"] == "probe task ran hello"
    assert probe["request_id"] == "req-from-web-7"
    assert probe["ticket_id"] == 314
    assert probe["task"] == "tests.log_probe" and probe["task_id"] == result.id
    succeeded = [entry for entry in entries if "succeeded" in entry["message"]]
    assert succeeded and succeeded[0]["ticket_id"] == 314
