from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def shared_data() -> Iterator[Path]:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared datasets are not here ({SHARED_DATA}); CI has them")
    yield SHARED_DATA
