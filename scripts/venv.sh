#!/usr/bin/env bash
# Create/refresh the project's Python virtual environment at ./.venv with the pinned
# tools from scripts/requirements.txt (moto_server, pysail, deltalake, cfn-lint, ...).
#
# Idempotent and fast when nothing changed: a stamp file records the hash of
# requirements.txt (and the interpreter version); pip runs only when it differs.
#
#   scripts/venv.sh            # create or update
#   scripts/venv.sh --force    # reinstall even if the stamp matches
#   PYTHON=python3.12 scripts/venv.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DELTASINK_VENV:-$ROOT/.venv}"
REQ="$ROOT/scripts/requirements.txt"
STAMP="$VENV/.deltasink-requirements.sha256"
PYTHON="${PYTHON:-python3}"

force=0
[[ "${1:-}" == "--force" ]] && force=1

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "venv: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
fi

want="$( { sha256sum "$REQ" | cut -d' ' -f1; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"

if [[ $force -eq 0 && "$want" == "$have" ]]; then
    exit 0
fi

echo "venv: installing scripts/requirements.txt into $VENV (this takes a minute the first time)" >&2
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$VENV/bin/python" -m pip install --quiet --upgrade pip >"$log" 2>&1 \
    || ! "$VENV/bin/python" -m pip install --quiet -r "$REQ" >>"$log" 2>&1; then
    echo "venv: pip install failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "$want" >"$STAMP"
echo "venv: ready ($VENV)" >&2
