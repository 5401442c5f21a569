#!/usr/bin/env bash
# Create (or reuse) the virtualenv and install the pinned requirements into it.
# The venv lives in $SWITCHBOARD_VENV (default: .venv); it is reinstalled only when requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
REQUIREMENTS="${1:-requirements-dev.txt}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
fi
stamp="$VENV/.switchboard-$(cat requirements*.txt | sha256sum | cut -c1-16)-$(basename "$REQUIREMENTS")"
if [ ! -f "$stamp" ]; then
    echo "==> installing $REQUIREMENTS into $VENV (first time: a few minutes)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    touch "$stamp"
fi
