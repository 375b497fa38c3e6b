#!/usr/bin/env bash
# ops-tools.sh: installs, once and cached, the tools the deployment checks run with (tests/ops):
#   kustomize   built from the Go module proxy (sigs.k8s.io/kustomize/kustomize/v5), renders k8s/
#   a Python venv with kubernetes-validate (the Kubernetes JSON schemas, offline) and
#               check-jsonschema (with its vendored Compose specification schema), plus
#               phonenumbers (libphonenumber's metadata: the oracle of wa-users' phone table,
#               tests/unit/users/phone_oracle.py, and the input of its generator) and pymongo
#               (tools/loadgen/seed_analytics.py, the analytics benchmark's bulk seeding)
# Idempotent: does nothing when both are present at the pinned versions.
#   ops-tools.sh            install what is missing
#   ops-tools.sh --print    print KUSTOMIZE=... and OPS_PYTHON=... (the paths the tests use)
# Reads WA_CACHE_DIR (default ~/.cache/wabridge). promtool comes from Debian (deps.sh).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUSTOMIZE_VERSION=v5.7.1
PY_PACKAGES=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
# added to the venv without rebuilding it (own marker file)
PY_TEST_PACKAGES=(phonenumbers==9.0.43 pymongo==4.20.0)
OPS_HOME=$WA_CACHE_DIR/ops-tools
KUSTOMIZE=$OPS_HOME/kustomize-$KUSTOMIZE_VERSION/kustomize
OPS_VENV=$OPS_HOME/venv
OPS_PYTHON=$OPS_VENV/bin/python
OPS_LOG=$WA_CACHE_DIR/logs/ops-tools.log

if [[ "${1:-}" == --print ]]; then
  printf 'KUSTOMIZE=%s\nOPS_PYTHON=%s\n' "$KUSTOMIZE" "$OPS_PYTHON"
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--print]" >&2; exit 2; }

kustomize_ok() { [[ -x "$KUSTOMIZE" ]] && "$KUSTOMIZE" version 2>/dev/null | grep -q "$KUSTOMIZE_VERSION"; }
venv_ok() { [[ -f "$OPS_VENV/.installed" && "$(cat "$OPS_VENV/.installed")" == "${PY_PACKAGES[*]}" ]]; }
test_ok() { [[ -f "$OPS_VENV/.installed-test" && "$(cat "$OPS_VENV/.installed-test")" == "${PY_TEST_PACKAGES[*]}" ]]; }

kustomize_ok && venv_ok && test_ok && exit 0
mkdir -p "$OPS_HOME" "$(dirname "$OPS_LOG")"
wa_lock "$OPS_HOME/.lock" 900 "the ops tools install"

if ! kustomize_ok; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  [[ -x "$go" ]] || wa_die "ops-tools: 'go' not found (needed to build kustomize)"
  wa_log "ops-tools: building kustomize $KUSTOMIZE_VERSION (one-time; log $OPS_LOG)"
  mkdir -p "$(dirname "$KUSTOMIZE")"
  if ! GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$(dirname "$KUSTOMIZE")" \
    "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >>"$OPS_LOG" 2>&1; then
    wa_die "ops-tools: go install kustomize $KUSTOMIZE_VERSION failed" "$OPS_LOG"
  fi
  kustomize_ok || wa_die "ops-tools: $KUSTOMIZE does not report $KUSTOMIZE_VERSION" "$OPS_LOG"
fi

if ! venv_ok; then
  wa_log "ops-tools: creating the venv $OPS_VENV (${PY_PACKAGES[*]}; log $OPS_LOG)"
  rm -rf "$OPS_VENV"
  python3 -m venv "$OPS_VENV" >>"$OPS_LOG" 2>&1 || wa_die "ops-tools: python3 -m venv failed" "$OPS_LOG"
  "$OPS_VENV/bin/pip" install --disable-pip-version-check -q "${PY_PACKAGES[@]}" >>"$OPS_LOG" 2>&1 ||
    wa_die "ops-tools: pip install ${PY_PACKAGES[*]} failed" "$OPS_LOG"
  printf '%s' "${PY_PACKAGES[*]}" >"$OPS_VENV/.installed"
fi
if ! test_ok; then
  wa_log "ops-tools: adding ${PY_TEST_PACKAGES[*]} to $OPS_VENV (log $OPS_LOG)"
  "$OPS_VENV/bin/pip" install --disable-pip-version-check -q "${PY_TEST_PACKAGES[@]}" >>"$OPS_LOG" 2>&1 ||
    wa_die "ops-tools: pip install ${PY_TEST_PACKAGES[*]} failed" "$OPS_LOG"
  printf '%s' "${PY_TEST_PACKAGES[*]}" >"$OPS_VENV/.installed-test"
fi
wa_log "ops-tools: kustomize $KUSTOMIZE_VERSION and the validation venv ready in $OPS_HOME"
