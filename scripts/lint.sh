#!/usr/bin/env bash
# Lint, format check and a check that the models and migrations agree.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
SWITCHBOARD_DATA_DIR="$(mktemp -d)" "$VENV/bin/python" manage.py makemigrations --check --dry-run
