#!/usr/bin/env bash
# Lint, format check, type check and a check that the models and migrations agree.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
export SWITCHBOARD_DATA_DIR="${SWITCHBOARD_DATA_DIR:-$(mktemp -d)}"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" inference_app tickets retrieval tests benchmarks manage.py
"$VENV/bin/python" manage.py makemigrations --check --dry-run
