from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The environment of a fresh install with nothing configured, its data under ``data_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "LLM_", "SWITCHBOARD_", "DJANGO_"))
    }
    env["SWITCHBOARD_DATA_DIR"] = str(data_dir)
    env["DJANGO_SETTINGS_MODULE"] = "inference_app.settings"
    return env


def run_manage(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` in a separate process with ``env``."""
    return _run([sys.executable, "manage.py", *args], env=env, timeout=timeout)


def run_python(code: str, *, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` in a separate process with ``env``, from the repository root."""
    return _run([sys.executable, "-c", code], env=env, timeout=timeout)


def _run(command: list[str], *, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def worker_environment(index_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a Celery worker process that shares this test's database and knowledge base."""
    from django.db import connection

    database = connection.settings_dict
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        INDEX_DIR=str(index_dir),
        **extra,
    )
    return env


@pytest.fixture
def shared_data() -> Iterator[Path]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared datasets are not here ({SHARED_DATA}); CI has them")
    yield SHARED_DATA


@pytest.fixture
def knowledge_dir(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """An empty, private index directory for this test; the process's loaded index, label model and
    answer ranker are forgotten (each is rechecked only every few seconds: a test could otherwise get
    the one an earlier test loaded from its own directory)."""
    from retrieval import answer_services, label_services
    from retrieval.services import kb_reset_local

    def forget_loaded() -> None:
        kb_reset_local()
        label_services._cache.forget()
        answer_services._cache.forget()

    settings.INDEX_DIR = tmp_path / "index"
    settings.INDEX_DIR.mkdir()
    forget_loaded()
    yield settings.INDEX_DIR
    forget_loaded()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run tasks inline in this process (for tests of what a task does, not of the worker)."""
    from inference_app.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real vLLM server (scripts/vllm_serve.sh), started once per session and stopped at its end:
    a tests.vllm_server.VllmServer, or None when $SWITCHBOARD_TEST_VLLM_URL names an outside server.
    Skips only where vLLM is not installed (scripts/vllm_env.sh)."""
    from tests.vllm_server import serve_for_session

    yield from serve_for_session(tmp_path_factory.mktemp("vllm"))


@pytest.fixture(scope="session")
def vllm_base_url(vllm_server: Any) -> str:
    """The real vLLM server's OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/v1."""
    return os.environ.get("SWITCHBOARD_TEST_VLLM_URL") or vllm_server.base_url
