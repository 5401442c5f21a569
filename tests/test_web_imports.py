"""The web process stays light: no torch, faiss, sentence-transformers or llama.cpp in it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import embedded_env, run_manage, run_python

HEAVY = ("torch", "faiss", "sentence_transformers", "transformers", "llama_cpp")

PROBE = f"""
import sys
from inference_app.wsgi import application
from django.test import Client
from django.urls import get_resolver

get_resolver().url_patterns  # import every URLconf, view and admin module
client = Client()
assert client.get("/healthz").status_code == 200
client.get("/admin/login/")
import tickets.services.lifecycle, tickets.services.knowledge  # noqa
import tickets.services.history_import, retrieval.services  # noqa
loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
print("HEAVY:", ",".join(loaded))
"""


def test_web_process_does_not_import_heavy_libraries(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    assert run_manage("migrate", "--no-input", env=env).returncode == 0
    result = run_python(PROBE, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HEAVY:", result.stdout
