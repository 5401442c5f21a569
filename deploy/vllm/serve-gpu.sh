#!/usr/bin/env bash
# Serve a model for Switchboard with vLLM's official image on this host's NVIDIA GPU(s).
#   deploy/vllm/serve-gpu.sh [CONFIG.yaml] [extra vLLM arguments]
# CONFIG defaults to qwen2.5-1.5b-instruct.yaml beside this script. The checkpoint must already be in
# $MODELS_DIR (mounted read-only at /models; see README.md: download once, no hub at run time).
# Then point the app at it: LLM_BACKEND=openai LLM_BASE_URL=http://HOST:8000/v1 LLM_MODEL=<served name>
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CONFIG="$(realpath "${1:-$HERE/qwen2.5-1.5b-instruct.yaml}")"
shift || true
IMAGE="${VLLM_IMAGE:-vllm/vllm-openai:v0.32.0}"
MODELS_DIR="${MODELS_DIR:-/srv/switchboard/models}"
BIND="${VLLM_BIND:-127.0.0.1:8000}"  # put it on a private interface, never the internet: no auth by default
API_KEY_ARGS=()
if [ -n "${VLLM_API_KEY:-}" ]; then
    API_KEY_ARGS=(-e "VLLM_API_KEY=$VLLM_API_KEY")  # then set LLM_API_KEY to the same in the app
fi
exec docker run --rm --name "${VLLM_CONTAINER:-switchboard-vllm}" \
    --gpus "${VLLM_GPUS:-all}" --ipc=host \
    -p "$BIND:8000" \
    -v "$MODELS_DIR:/models:ro" \
    -v "$CONFIG:/etc/vllm/config.yaml:ro" \
    -v switchboard-vllm-cache:/root/.cache/vllm \
    -e HF_HUB_OFFLINE=1 -e TRANSFORMERS_OFFLINE=1 -e VLLM_NO_USAGE_STATS=1 -e DO_NOT_TRACK=1 \
    "${API_KEY_ARGS[@]}" \
    "$IMAGE" --config /etc/vllm/config.yaml "$@"
