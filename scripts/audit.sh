#!/usr/bin/env bash
# Known vulnerabilities in the locked versions, with pip-audit: requirements-dev.lock holds every
# runtime pin of requirements.lock (same versions) plus the dev tools.
# pip-audit asks PyPI's per-release JSON API for each pinned version. Where that service cannot be
# reached (offline, or a mirror without it), nothing can be audited: this script then says so loudly
# and passes, unless SWITCHBOARD_AUDIT_STRICT=1 (then any package left unaudited fails it).
# A vulnerability found always fails it. Accepted findings: scripts/audit-ignore.txt ("ID  reason").
# SWITCHBOARD_SKIP_AUDIT=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SWITCHBOARD_VENV:-.venv}"
if [ "${SWITCHBOARD_SKIP_AUDIT:-0}" = "1" ]; then
    echo "pip-audit skipped (SWITCHBOARD_SKIP_AUDIT=1)"
    exit 0
fi
ignores=()
while read -r id _reason; do
    [ -n "$id" ] && ignores+=(--ignore-vuln "$id")
done < <(grep -v '^\s*#' scripts/audit-ignore.txt || true)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# PyPI knows torch's CPU build by its public version: audit torch==X for torch==X+cpu.
sed -E 's/^(torch==[^+ ]+)\+cpu/\1/' requirements-dev.lock > "$work/requirements-dev.lock"
status=0
"$VENV/bin/pip-audit" --progress-spinner off --disable-pip --require-hashes --format json \
    --output "$work/report.json" -r "$work/requirements-dev.lock" "${ignores[@]}" || status=$?
"$VENV/bin/python" - "$work/report.json" "$status" "${SWITCHBOARD_AUDIT_STRICT:-0}" <<'PY'
import json
import sys

path, status, strict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
try:
    with open(path) as fh:
        report = json.load(fh)
except (OSError, ValueError):
    sys.exit(f"pip-audit failed (exit {status}) without a report: see its error above")
deps = report.get("dependencies", [])
vulnerable = [d for d in deps if d.get("vulns")]
unaudited = [d for d in deps if d.get("skip_reason")]
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
        print(f"VULNERABLE {dep['name']}=={dep['version']}: {vuln['id']} (fixed in: {fixes})")
print(f"pip-audit: {len(deps)} locked packages, {len(vulnerable)} vulnerable, {len(unaudited)} not audited")
if vulnerable:
    sys.exit("bump the pins above (requirements*.txt, then scripts/lock.sh), or accept a finding with a "
             "reason in scripts/audit-ignore.txt")
if unaudited:
    names = ", ".join(f"{d['name']}" for d in unaudited[:8]) + (" ..." if len(unaudited) > 8 else "")
    print(f"WARNING: NOT AUDITED ({len(unaudited)} of {len(deps)}): {names}: PyPI's per-release JSON API "
          "did not answer for them (offline, or a mirror without it)", file=sys.stderr)
    if strict:
        sys.exit("SWITCHBOARD_AUDIT_STRICT=1: every locked package must be audited")
PY
