#!/usr/bin/env bash
# api-tools.sh: installs, once and cached, the tool that checks wa-gateway against its OpenAPI
# document (tests/integration/gateway_openapi.sh): schemathesis from PyPI, in a venv of its own.
# Idempotent: does nothing when the pinned version is present.
#   api-tools.sh            install what is missing
#   api-tools.sh --print    print SCHEMATHESIS=... (the path the test uses)
# Reads WA_CACHE_DIR (default ~/.cache/wabridge).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY_PACKAGES=(schemathesis==4.32.5)
API_HOME=$WA_CACHE_DIR/api-tools
API_VENV=$API_HOME/venv
SCHEMATHESIS=$API_VENV/bin/schemathesis
API_LOG=$WA_CACHE_DIR/logs/api-tools.log

if [[ "${1:-}" == --print ]]; then
  printf 'SCHEMATHESIS=%s\n' "$SCHEMATHESIS"
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--print]" >&2; exit 2; }

venv_ok() { [[ -x "$SCHEMATHESIS" && -f "$API_VENV/.installed" && "$(cat "$API_VENV/.installed")" == "${PY_PACKAGES[*]}" ]]; }
venv_ok && exit 0
mkdir -p "$API_HOME" "$(dirname "$API_LOG")"
wa_lock "$API_HOME/.lock" 900 "the API tools install"
venv_ok && exit 0
wa_log "api-tools: creating the venv $API_VENV (${PY_PACKAGES[*]}; log $API_LOG)"
rm -rf "$API_VENV"
python3 -m venv "$API_VENV" >>"$API_LOG" 2>&1 || wa_die "api-tools: python3 -m venv failed" "$API_LOG"
"$API_VENV/bin/pip" install --disable-pip-version-check -q "${PY_PACKAGES[@]}" >>"$API_LOG" 2>&1 ||
  wa_die "api-tools: pip install ${PY_PACKAGES[*]} failed" "$API_LOG"
printf '%s' "${PY_PACKAGES[*]}" >"$API_VENV/.installed"
wa_log "api-tools: schemathesis ready in $API_VENV"
