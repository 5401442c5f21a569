"""gunicorn settings for the web process: ``gunicorn inference_app.wsgi --config deploy/gunicorn.conf.py``.

Every value can be overridden from the environment (gunicorn also reads GUNICORN_CMD_ARGS). Request
logs come from the app as JSON (inference_app.logging), so gunicorn's own access log is off.
Prometheus metrics are kept per worker process in PROMETHEUS_MULTIPROC_DIR and summed at scrape time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Sync workers: the web process does light database work; model calls run on Celery workers.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "1"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
# Behind a load balancer or ingress that sets X-Forwarded-*; Django trusts X-Forwarded-Proto only
# in production (SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
# No runtime control socket: it defaults to $HOME/.gunicorn, read-only in the container and shared
# by every gunicorn on a host; Kubernetes or compose manage the process instead.
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# gunicorn's own lines (start, worker exits, timeouts) in the app's JSON format when it logs JSON.
_production = os.environ.get("DJANGO_ENV") == "production"
if os.environ.get("LOG_FORMAT", "json" if _production else "text") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "inference_app.logging.JsonFormatter"}},
        "handlers": {
            name: {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
            for name in ("console", "error_console")
        },
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        },
    }

MULTIPROC_DIR = Path(
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "prometheus-switchboard")
    )
)


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: files of a previous run would be counted again."""
    shutil.rmtree(MULTIPROC_DIR, ignore_errors=True)
    MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Fold a finished worker's gauges out of the totals (its counters and histograms stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
