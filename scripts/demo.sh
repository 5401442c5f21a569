#!/usr/bin/env bash
# Quick start: install, migrate, load the demo company, then run the web server and a Celery worker
# on the embedded default (SQLite, a filesystem broker, the embedded model) unless URLs are set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements.lock
VENV="${SWITCHBOARD_VENV:-.venv}"
PY="$VENV/bin/python"
PORT="${PORT:-8000}"
"$PY" manage.py migrate --no-input
"$PY" manage.py collectstatic --no-input --verbosity 0
"$PY" manage.py load_demo
"$PY" manage.py train_classifier   # calibrated confidence from the demo's history
"$PY" manage.py train_answer_ranker   # which stored answer to suggest, and a calibrated confidence in it
QUEUES="$("$PY" manage.py pipeline_queues)"   # the default queue and every stage's (the stage table)
echo "==> starting a Celery worker (every queue, with the beat sweeper) and the web server on http://127.0.0.1:$PORT/"
echo "    (Ctrl-C stops both)"
"$VENV/bin/celery" -A inference_app worker --beat --schedule "${SWITCHBOARD_DATA_DIR:-var}/celerybeat-schedule" \
    --queues "$QUEUES" --loglevel=INFO --concurrency=1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
"$VENV/bin/gunicorn" inference_app.wsgi --bind "127.0.0.1:$PORT" --workers 2 --access-logfile -
