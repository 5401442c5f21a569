"""The production configuration served for real: gunicorn with deploy/gunicorn.conf.py and
DJANGO_ENV=production behind a TLS-terminating proxy (simulated by its X-Forwarded-Proto header)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, embedded_env, run_manage

pytestmark = pytest.mark.slow

HOST = "switchboard.example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, port: int, static_root: Path) -> None:
        self.port = port
        self.static_root = static_root

    def get(
        self, path: str, *, host: str = HOST, https: bool = True, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = {"Host": host, **(headers or {})}
        if https:
            sent["X-Forwarded-Proto"] = "https"
        connection.request("GET", path, headers=sent)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("production")
    key_file = tmp / "secret_key"
    key_file.write_text("s" * 25 + "-Kq7" * 8)
    env = embedded_env(tmp / "data")
    env.update(
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY_FILE": str(key_file),
            "ALLOWED_HOSTS": HOST,
            "STATIC_ROOT": str(tmp / "static"),
            "PORT": str(free_port()),
            "WEB_CONCURRENCY": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
        }
    )
    for command in (["migrate", "--no-input"], ["collectstatic", "--no-input", "--verbosity", "0"]):
        result = run_manage(*command, env=env)
        assert result.returncode == 0, result.stderr
    with (tmp / "gunicorn.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "inference_app.wsgi", "--config", "deploy/gunicorn.conf.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = Server(int(env["PORT"]), tmp / "static")
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    server.get("/healthz", host="127.0.0.1", https=False)
                    break
                except OSError:
                    assert process.poll() is None, (tmp / "gunicorn.log").read_text()[-3000:]
                    assert time.monotonic() < deadline, "gunicorn did not start"
                    time.sleep(0.3)
            yield server
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert os.environ.get("DJANGO_ENV") != "production"  # the test process itself stayed as it was


def test_plain_http_is_redirected_to_https(production_server: Server) -> None:
    response = production_server.get("/accounts/login/", https=False)
    assert response.status == 301
    assert response.headers["Location"] == f"https://{HOST}/accounts/login/"


def test_https_pages_send_hsts_and_secure_cookies(production_server: Server) -> None:
    response = production_server.get("/accounts/login/")
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    cookies = response.headers.get_all("Set-Cookie") or []
    csrf = [cookie for cookie in cookies if cookie.startswith("csrftoken=")]
    assert csrf and "Secure" in csrf[0]


def test_unknown_hosts_are_refused_but_probes_by_ip_answer(production_server: Server) -> None:
    assert production_server.get("/accounts/login/", host="evil.example.net").status == 400
    for path in ("/healthz", "/readyz", "/metrics"):
        assert production_server.get(path, host="10.42.0.7:8000", https=False).status == 200, path


def test_static_files_are_served_hashed_compressed_and_cached(production_server: Server) -> None:
    manifest = json.loads((production_server.static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert hashed != "admin/css/base.css"
    response = production_server.get(f"/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    assert production_server.get("/static/admin/css/base.css").status == 200  # the plain name too
