"""/healthz and /readyz against the real PostgreSQL and Redis (and real sockets for what is down)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import embedded_env, run_manage, run_python

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def readyz(client: Client | None = None) -> tuple[int, dict[str, Any]]:
    response = (client or Client()).get("/readyz")
    return response.status_code, json.loads(response.content)


@pytest.fixture
def models_server() -> Iterator[dict[str, Any]]:
    """A real HTTP server answering GET /v1/models like vLLM, serving the names in ``state["served"]``."""
    state: dict[str, Any] = {"served": ["smollm2-135m-instruct"], "status": 200, "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["auth"].append(self.headers.get("Authorization"))
            body = json.dumps({"object": "list", "data": [{"id": name} for name in state["served"]]})
            payload = body.encode() if self.path == "/v1/models" else b"{}"
            self.send_response(state["status"] if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def ready_settings(settings: Any, knowledge_dir: Path) -> Any:
    settings.LLM_BACKEND = "llamacpp"
    settings.READYZ_REQUIRE_MODEL = False
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
    return settings


def test_healthz_answers_without_touching_anything() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_postgres_redis_index_and_model_are_there(ready_settings: Any) -> None:
    assert ready_settings.CELERY_BROKER_URL.startswith("redis://")
    status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["failed"] == [] and body["degraded"] == []
    checks = body["checks"]
    assert {"database", "broker", "index", "model"} <= set(checks)
    assert all(check["ok"] for check in checks.values()), checks
    assert checks["database"]["detail"] == "postgresql answered"
    assert checks["broker"]["detail"] == "redis answered PING"
    assert "SmolLM2" in checks["model"]["detail"]


def test_readyz_is_503_naming_the_broker_when_its_port_is_closed(ready_settings: Any) -> None:
    ready_settings.CELERY_BROKER_URL = f"redis://:Sup3rSecretPw@127.0.0.1:{closed_port()}/0"
    status, body = readyz()
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False
    assert "Connection refused" in body["checks"]["broker"]["detail"]
    assert body["checks"]["database"]["ok"] is True
    assert "Sup3rSecretPw" not in json.dumps(body)


def test_readyz_is_503_naming_the_cache_when_redis_cache_is_down(ready_settings: Any) -> None:
    ready_settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    status, body = readyz()
    assert status == 503
    assert body["failed"] == ["cache"]


def test_readyz_is_503_naming_the_database_when_postgres_is_unreachable(tmp_path: Path) -> None:
    """A separate process whose DATABASE_URL points at a closed port, Redis being up."""
    from django.conf import settings

    env = embedded_env(tmp_path)
    env["DATABASE_URL"] = f"postgres://postgres:Db-Secret-9@127.0.0.1:{closed_port()}/switchboard"
    env["REDIS_URL"] = str(settings.REDIS_URL)
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    probe = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/readyz'); print(r.status_code, r.content.decode())"
    )
    result = run_python(probe, env=env)
    assert result.returncode == 0, result.stderr
    status, _, body_text = result.stdout.strip().splitlines()[-1].partition(" ")
    body = json.loads(body_text)
    assert status == "503"
    assert body["failed"] == ["database"]
    assert body["checks"]["broker"]["ok"] is True
    assert "Db-Secret-9" not in body_text


def test_readyz_reports_a_model_server_outage_as_degraded_unless_required(
    ready_settings: Any, models_server: dict[str, Any]
) -> None:
    ready_settings.LLM_BACKEND = "openai"
    ready_settings.LLM_MODEL = "smollm2-135m-instruct"
    ready_settings.LLM_API_KEY = "sk-model-key-123"
    ready_settings.LLM_BASE_URL = models_server["url"]

    status, body = readyz()
    assert status == 200 and body["status"] == "ok", body
    assert body["checks"]["model"]["detail"] == "the server serves 'smollm2-135m-instruct'"
    assert models_server["auth"] == ["Bearer sk-model-key-123"]

    models_server["served"] = ["some-other-model"]
    status, body = readyz()
    assert status == 200
    assert body["status"] == "degraded" and body["degraded"] == ["model"]
    assert "does not serve 'smollm2-135m-instruct'" in body["checks"]["model"]["detail"]

    ready_settings.LLM_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    status, body = readyz()
    assert (status, body["degraded"]) == (200, ["model"])
    assert "sk-model-key-123" not in json.dumps(body)

    ready_settings.READYZ_REQUIRE_MODEL = True
    status, body = readyz()
    assert (status, body["failed"]) == (503, ["model"])


def test_readyz_index_check_reads_the_manifest_and_fails_only_when_the_folder_is_unusable(
    ready_settings: Any, knowledge_dir: Path, tmp_path: Path
) -> None:
    _, body = readyz()
    assert body["checks"]["index"]["detail"].startswith("no index files yet")

    manifest: dict[str, Any] = {
        "format_version": 1,
        "generation": "0123456789abcdef",
        "embedder": {"name": ready_settings.EMBEDDING_MODEL, "dim": 384},
        "counts": {"documents": 7},
        "files": ["vectors.idx", "lexical.idx", "docs.meta"],
    }
    (knowledge_dir / "manifest.json").write_text(json.dumps(manifest))
    _, body = readyz()
    assert "files missing" in body["checks"]["index"]["detail"]
    for name in manifest["files"]:
        (knowledge_dir / name).write_bytes(b"x")
    status, body = readyz()
    assert status == 200
    assert body["checks"]["index"]["detail"] == "index loadable: 7 documents, generation 0123456789ab"

    manifest["embedder"] = {"name": "another-model", "dim": 768}
    (knowledge_dir / "manifest.json").write_text(json.dumps(manifest))
    status, body = readyz()
    assert status == 200 and "rebuilt on first use" in body["checks"]["index"]["detail"]

    not_a_folder = tmp_path / "index-file"
    not_a_folder.write_text("")
    ready_settings.INDEX_DIR = not_a_folder
    status, body = readyz()
    assert (status, body["failed"]) == (503, ["index"])
    assert "is not a directory" in body["checks"]["index"]["detail"]


def test_readyz_checks_the_filesystem_broker_folders(ready_settings: Any, tmp_path: Path) -> None:
    folders = {key: tmp_path / key for key in ("data_folder_in", "processed_folder", "control_folder")}
    for folder in folders.values():
        folder.mkdir()
    ready_settings.CELERY_BROKER_URL = "filesystem://"
    ready_settings.CELERY_BROKER_TRANSPORT_OPTIONS = {key: str(path) for key, path in folders.items()}
    status, body = readyz()
    assert status == 200
    assert body["checks"]["broker"]["detail"] == "filesystem broker folders are writable"

    folders["control_folder"].rmdir()
    status, body = readyz()
    assert (status, body["failed"]) == (503, ["broker"])


def test_probes_skip_host_validation_and_the_https_redirect(ready_settings: Any) -> None:
    """Kubelets and Prometheus call pods by IP over plain HTTP: probes must still answer."""
    ready_settings.ALLOWED_HOSTS = ["switchboard.example.com"]
    ready_settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/metrics", HTTP_HOST="10.1.2.3:8000").status_code == 200
    # Everything else still gets both protections.
    assert client.get("/admin/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    redirect = client.get("/admin/login/", HTTP_HOST="switchboard.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://switchboard.example.com/admin/login/"


PROBE_IMPORTS = """
import sys, django
django.setup()
from django.test import Client
client = Client()
assert client.get('/readyz').status_code == 200, client.get('/readyz').content
assert client.get('/metrics').status_code == 200
heavy = ('torch', 'faiss', 'sentence_transformers', 'transformers', 'llama_cpp', 'onnxruntime')
print('HEAVY:', ','.join(sorted(name for name in heavy if name in sys.modules)))
"""


def test_readyz_and_metrics_keep_the_web_process_light(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    assert run_manage("migrate", "--no-input", env=env).returncode == 0
    result = run_python(PROBE_IMPORTS, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"
