#!/usr/bin/env bash
# Run the test suite against the real PostgreSQL and Redis on this machine (started if down).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/tickets -k audit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements-dev.lock
scripts/services.sh
VENV="${SWITCHBOARD_VENV:-.venv}"
exec "$VENV/bin/python" -m pytest "$@"
