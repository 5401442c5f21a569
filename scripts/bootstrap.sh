#!/usr/bin/env bash
# Create (or reuse) the virtualenv and install the locked requirements into it, hashes checked.
# The venv lives in $SWITCHBOARD_VENV (default: .venv); it is reinstalled only when a requirements or
# lock file changes. The argument names a lock file: requirements-dev.lock (default) or requirements.lock
# (the app alone); a requirements*.txt name means its lock. Locks come from scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
LOCK="${1:-requirements-dev.lock}"
LOCK="${LOCK%.txt}"
LOCK="${LOCK%.lock}.lock"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
fi
stamp="$VENV/.switchboard-$(cat requirements*.txt requirements*.lock | sha256sum | cut -c1-16)-$(basename "$LOCK")"
if [ ! -f "$stamp" ]; then
    echo "==> installing $LOCK into $VENV (first time: a few minutes)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$LOCK"
    touch "$stamp"
fi
