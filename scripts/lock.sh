#!/usr/bin/env bash
# Regenerate the lock files from the top-level requirements, with hashes:
#   requirements-dev.txt  -> requirements-dev.lock  (runtime + test and lint tools)
#   requirements.txt      -> requirements.lock      (runtime alone, at the dev lock's versions)
# scripts/bootstrap.sh installs from the locks with --require-hashes; never edit them by hand.
# Deterministic: pins already in a lock are kept, only what the requirements changed is resolved again;
# `scripts/lock.sh --upgrade` (or `--upgrade-package NAME`) moves pins on purpose.
# pip-compile resolves with this machine's pip configuration (its local wheel folder provides the CPU
# build of torch, pinned as torch==X+cpu), so the hashes are those of the files a machine of this kind
# installs. pip-tools runs from its own small virtualenv, pinned in requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_TOOLS_VERSION="$(sed -n 's/^pip-tools==\([^ ;]*\).*/\1/p' requirements-dev.txt)"
[ -n "$PIP_TOOLS_VERSION" ] || { echo "pip-tools is not pinned in requirements-dev.txt" >&2; exit 1; }
TOOL_VENV="${SWITCHBOARD_LOCK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/pip-tools-$PIP_TOOLS_VERSION}"
if [ ! -x "$TOOL_VENV/bin/pip-compile" ]; then
    python3 -m venv "$TOOL_VENV"
    "$TOOL_VENV/bin/pip" install --quiet --disable-pip-version-check "pip-tools==$PIP_TOOLS_VERSION"
fi
export CUSTOM_COMPILE_COMMAND="scripts/lock.sh"
compile() {
    # The local index folders warn for every package they do not hold: not worth reading.
    "$TOOL_VENV/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}
# The dev lock is resolved first: it is the whole set, as one install of requirements-dev.txt resolves
# it; the runtime lock is then constrained to the same versions (requirements.txt is a subset).
echo "==> requirements-dev.lock"
compile --output-file requirements-dev.lock "${@}" requirements-dev.txt
echo "==> requirements.lock"
compile --constraint requirements-dev.lock --output-file requirements.lock "${@}" requirements.txt
