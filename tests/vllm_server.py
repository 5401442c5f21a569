"""A real vLLM server for the tests: scripts/vllm_serve.sh on a free port, from the vLLM virtualenv.

Used by the session fixtures ``vllm_server`` and ``vllm_base_url`` in tests/conftest.py. When
$SWITCHBOARD_TEST_VLLM_URL is set, that server is used instead and nothing is started.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVED_MODEL = "smollm2-135m-instruct"
NOT_INSTALLED = "vLLM is not installed: run scripts/vllm_env.sh"
START_TIMEOUT_S = 420.0


def vllm_venv() -> Path:
    """Where scripts/vllm_env.sh puts (or put) the vLLM virtualenv."""
    configured = os.environ.get("SWITCHBOARD_VLLM_VENV")
    if configured:
        return Path(configured)
    digest = hashlib.sha256((ROOT / "requirements-vllm.txt").read_bytes()).hexdigest()[:12]
    return Path.home() / ".cache" / "switchboard" / f"vllm-venv-{digest}"


def vllm_installed(venv: Path) -> bool:
    """Is the install there and complete (scripts/vllm_env.sh writes its stamp last)?"""
    return (venv / "bin" / "python").is_file() and any(venv.glob(".switchboard-vllm-*"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class VllmServer:
    """scripts/vllm_serve.sh as a child process group that the tests can stop, pause and restart."""

    def __init__(self, *, venv: Path, log_path: Path, port: int | None = None) -> None:
        self.venv = venv
        self.log_path = log_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = SERVED_MODEL
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "LLM_", "DJANGO_"))
        }
        env.update(
            SWITCHBOARD_VLLM_VENV=str(self.venv),
            SWITCHBOARD_VENV=sys.prefix,  # the app's virtualenv runs the checkpoint export
            VLLM_PORT=str(self.port),
            LLM_MODEL=self.model,
        )
        # The export is kept across test sessions (it is checked against its source each time).
        env.setdefault(
            "SWITCHBOARD_VLLM_MODEL_DIR",
            str(Path.home() / ".cache" / "switchboard" / "models" / "smollm2-135m-instruct-hf"),
        )
        return env

    def start(self) -> None:
        if self.running:
            return
        with self.log_path.open("ab") as log:
            log.write(f"\n===== starting vLLM on port {self.port} at {time.ctime()} =====\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                ["bash", str(ROOT / "scripts" / "vllm_serve.sh")],
                cwd=ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: vLLM's engine process goes with it
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until /v1/models lists the served model; raise with the log's tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"the vLLM server exited during start-up:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(1.0)
        raise RuntimeError(f"the vLLM server was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def ready(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/models", timeout=2.0)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        return any(entry.get("id") == self.model for entry in response.json().get("data", []))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            self._signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                process.wait(10)
        # The engine process may outlive the shell's exit for a moment.
        self._signal(signal.SIGKILL)
        self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its port but answers nothing, like a hung host."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def serve_for_session(log_dir: Path) -> Iterator[VllmServer | None]:
    """The body of the ``vllm_server`` fixture: a started, ready server, stopped at the end; None
    when $SWITCHBOARD_TEST_VLLM_URL names an outside server; a skip where vLLM is not installed."""
    if os.environ.get("SWITCHBOARD_TEST_VLLM_URL"):
        yield None
        return
    venv = vllm_venv()
    if not vllm_installed(venv):
        pytest.skip(f"{NOT_INSTALLED} (looked in {venv})")
    server = VllmServer(venv=venv, log_path=log_dir / "vllm.log")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
