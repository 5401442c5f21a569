"""Health endpoints for load balancers and Kubernetes.

- ``/healthz`` (liveness): the process answers HTTP. Nothing else: a database outage must not get
  every web process restarted.
- ``/readyz`` (readiness): can this process do its work? It checks the database, the broker, the
  cache (when Redis), the knowledge-base index (its folder, manifest and files: never loads FAISS)
  and the model backend (vLLM's ``/models`` lists the served model; or the embedded GGUF exists).
  The JSON body names every check with ``ok`` and a short ``detail``; the status is 503 when a
  required check fails. The model is required only with ``READYZ_REQUIRE_MODEL=true``: without the
  model the pipeline still routes in degraded mode (retrieval alone), so a model outage should not
  take the web tier out of the load balancer.

:class:`ProbeMiddleware` answers these paths (and ``/metrics``) before host validation and the HTTPS
redirect: kubelets and Prometheus call pods by IP address over plain HTTP.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    detail: str
    ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "required": self.required, "detail": self.detail, "ms": self.ms}


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failed = [result.name for result in results if result.required and not result.ok]
    degraded = [result.name for result in results if not result.required and not result.ok]
    status = "unavailable" if failed else "degraded" if degraded else "ok"
    body = {
        "status": status,
        "failed": failed,
        "degraded": degraded,
        "checks": {result.name: result.as_dict() for result in results},
    }
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response


def run_checks() -> list[CheckResult]:
    checks: list[tuple[str, bool, Callable[[], str]]] = [
        ("database", True, check_database),
        ("broker", True, check_broker),
    ]
    if settings.REDIS_URL and settings.REDIS_URL != settings.CELERY_BROKER_URL:
        checks.append(("cache", True, check_cache))
    checks.append(("index", True, check_index))
    checks.append(("model", settings.READYZ_REQUIRE_MODEL, check_model))
    return [_run(name, required, check) for name, required, check in checks]


def _run(name: str, required: bool, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}", False
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(name, ok, required, _redact(detail)[:MAX_DETAIL_CHARS], elapsed)


class CheckFailed(Exception):
    """A check's own verdict (its message is the detail shown)."""


# --- the checks ------------------------------------------------------------------------------------


def check_database() -> str:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"{connection.vendor} answered"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        _redis_ping(url)
        return "redis answered PING"
    if scheme == "filesystem":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            _writable_dir(Path(str(options[key])))
        return "filesystem broker folders are writable"
    if scheme == "memory":
        return "in-memory broker (tests only)"
    from kombu import Connection

    with Connection(url, connect_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS) as broker:
        broker.ensure_connection(max_retries=1, timeout=math.ceil(settings.HEALTH_CHECK_TIMEOUT_SECONDS))
    return f"{scheme} broker accepted a connection"


def check_cache() -> str:
    assert settings.REDIS_URL is not None
    _redis_ping(settings.REDIS_URL)
    return "redis answered PING"


def _redis_ping(url: str) -> None:
    import redis

    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        if not client.ping():
            raise CheckFailed("redis did not answer PING")
    finally:
        client.close()


def check_index() -> str:
    """The index folder is usable, and its files (if any) are complete and made by this embedding model.

    A missing or outdated index is not a failure: it is rebuilt from the database on first use.
    """
    directory = Path(settings.INDEX_DIR)
    _writable_dir(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        return "no index files yet: built from the database on first use"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"manifest unreadable ({type(exc).__name__}): rebuilt from the database on first use"
    embedder = (manifest.get("embedder") or {}).get("name")
    tuned = settings.TUNED_EMBEDDINGS and str(embedder).startswith("all-MiniLM-L6-v2-onnx-int8-tuned-")
    if embedder != settings.EMBEDDING_MODEL and not tuned:
        return f"index made by {embedder!r}, not {settings.EMBEDDING_MODEL!r}: rebuilt on first use"
    missing = [name for name in manifest.get("files", []) if not (directory / str(name)).is_file()]
    if missing:
        return f"index files missing ({', '.join(map(str, missing))}): rebuilt on first use"
    documents = (manifest.get("counts") or {}).get("documents")
    return f"index loadable: {documents} documents, generation {str(manifest.get('generation'))[:12]}"


def _writable_dir(directory: Path) -> None:
    if not directory.is_dir():
        raise CheckFailed(f"{directory} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".readyz-", delete=True):
            pass
    except OSError as exc:
        raise CheckFailed(f"{directory} is not writable ({exc.strerror})") from None


def check_model() -> str:
    if settings.LLM_BACKEND == "openai":
        return _check_openai_server()
    from inference_app.llm.vllm_checkpoint import packaged_gguf

    gguf = packaged_gguf()
    return f"embedded model file present ({gguf.name}, {gguf.stat().st_size // 1_000_000} MB)"


def _check_openai_server() -> str:
    import httpx

    base_url = str(settings.LLM_BASE_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {settings.LLM_API_KEY}"} if settings.LLM_API_KEY else {}
    response = httpx.get(f"{base_url}/models", headers=headers, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    if response.status_code != 200:
        raise CheckFailed(f"GET /models answered HTTP {response.status_code}")
    try:
        served = [str(item.get("id")) for item in response.json().get("data", [])]
    except (ValueError, AttributeError):
        raise CheckFailed("GET /models did not answer with a model list") from None
    if settings.LLM_MODEL not in served:
        raise CheckFailed(f"the server does not serve {settings.LLM_MODEL!r} (it serves {served[:5]})")
    return f"the server serves {settings.LLM_MODEL!r}"


# --- never show a secret ---------------------------------------------------------------------------


def _secrets() -> list[str]:
    values: list[str] = [settings.SECRET_KEY, settings.LLM_API_KEY or "", settings.METRICS_TOKEN or ""]
    for url in (settings.CELERY_BROKER_URL, settings.REDIS_URL or "", settings.CELERY_RESULT_BACKEND):
        password = urlsplit(url).password
        if password:
            values += [password, unquote(password)]
    values.append(str(connections["default"].settings_dict.get("PASSWORD") or ""))
    return sorted({value for value in values if len(value) >= 3}, key=len, reverse=True)


def _redact(text: str) -> str:
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text


# --- answering probes before host checks and HTTPS redirects ---------------------------------------


class ProbeMiddleware:
    """Answers ``/healthz``, ``/readyz`` and ``/metrics`` directly.

    Placed before ``SecurityMiddleware`` and ``CommonMiddleware``: probes come by pod IP (not an
    ALLOWED_HOSTS name) and over plain HTTP inside the cluster, and need no session or CSRF work.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = _probe_views().get(request.path_info)
        if view is None or request.method not in {"GET", "HEAD"}:
            return self.get_response(request)
        request.probe_route = request.path_info.lstrip("/")  # type: ignore[attr-defined]
        return view(request)


def _probe_views() -> dict[str, Callable[[HttpRequest], HttpResponse]]:
    from inference_app.metrics import metrics_view

    return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view}
