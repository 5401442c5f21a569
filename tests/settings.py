"""Settings for the test suite: the real PostgreSQL and Redis on this machine, unless overridden.

Set DATABASE_URL / REDIS_URL / CELERY_BROKER_URL yourself to test against other servers.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
# The pipeline's first message is sent in the request (tests look for it right after); the starter
# thread is tested on its own (tests/test_api_broker_down.py, tests/tickets/test_submission.py).
os.environ.setdefault("PIPELINE_ENQUEUE_LINGER_MS", "0")
os.environ.setdefault("SWITCHBOARD_DATA_DIR", str(Path(tempfile.gettempdir()) / "switchboard-test-data"))

from inference_app.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
