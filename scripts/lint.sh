#!/usr/bin/env bash
# Lint, format check, type check, a check that the models and migrations agree, the declared
# dependencies against the imports (deptry) and the locked versions against known vulnerabilities
# (pip-audit; it asks PyPI's vulnerability service: SWITCHBOARD_SKIP_AUDIT=1 skips it offline).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
export SWITCHBOARD_DATA_DIR="${SWITCHBOARD_DATA_DIR:-$(mktemp -d)}"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy" inference_app tickets retrieval tests benchmarks manage.py
"$VENV/bin/python" manage.py makemigrations --check --dry-run
# deptry reads its settings (requirements files, module names, dev-only packages) from pyproject.toml.
"$VENV/bin/deptry" .
scripts/audit.sh
