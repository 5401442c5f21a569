#!/usr/bin/env bash
# End-to-end import of the 47,837 it-service-tickets into a fresh PostgreSQL database and knowledge
# base: wall time and peak memory of `import_tickets`, then of `rebuild_index` from the database.
# Usage: benchmarks/bench_import.sh [--limit N]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${SWITCHBOARD_VENV:-.venv}/bin/python"
DATA="../shared/data/it-service-tickets/all_tickets_processed_improved_v3.csv"
[ -f "$DATA" ] || { echo "needs $DATA" >&2; exit 1; }
work="$(mktemp -d)"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/switchboard_bench_import"
export SWITCHBOARD_DATA_DIR="$work" CELERY_BROKER_URL="memory://"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS switchboard_bench_import" -c "CREATE DATABASE switchboard_bench_import"
"$PY" manage.py migrate -v0
peak() { grep -E "Elapsed|Maximum resident" "$1" | sed 's/^\s*/  /'; }
echo "== import_tickets (embedding, tickets, audit events, knowledge entries)"
/usr/bin/time -v -o "$work/import.time" "$PY" manage.py import_tickets "$DATA" \
    --text-column Document --label-column Topic_group --source it-bench "$@"
peak "$work/import.time"
echo "== rebuild_index (FAISS + BM25 from the stored embeddings, no re-embedding)"
/usr/bin/time -v -o "$work/rebuild.time" "$PY" manage.py rebuild_index
peak "$work/rebuild.time"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; command: $0 $*"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE switchboard_bench_import"
rm -rf "$work"
