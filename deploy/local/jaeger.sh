#!/usr/bin/env bash
# jaeger.sh: Jaeger (v2, the all-in-one `jaeger` command: UI and API on 16686, OTLP on 4317 and
# 4318, in-memory storage) for `make run`, built once per machine from the Go module proxy
# (github.com/jaegertracing/jaeger v1.75.0, the approved version; its v2 binary) into
# $WA_CACHE_DIR/jaeger-v1.75.0.
#   jaeger.sh            build when missing
#   jaeger.sh --print    print the binary's path (it may not exist yet)
# Build notes: `go install ...@version` refuses a module with replace directives, so a small
# local module names jaeger as a tool (`go get -tool`) and `go build` runs there, niced, one
# package at a time (a shared 2-core machine; the first build takes several minutes).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=v1.75.0
JAEGER_HOME=$WA_CACHE_DIR/jaeger-$JAEGER_VERSION
JAEGER_BIN=$JAEGER_HOME/jaeger
JAEGER_LOG=$WA_CACHE_DIR/logs/jaeger-build.log

if [[ "${1:-}" == --print ]]; then
  printf '%s\n' "$JAEGER_BIN"
  exit 0
fi
[[ $# -eq 0 ]] || { echo "usage: $0 [--print]" >&2; exit 2; }
[[ -x "$JAEGER_BIN" ]] && exit 0

go=$(command -v go || echo /usr/local/go/bin/go)
[[ -x "$go" ]] || wa_die "jaeger: 'go' not found (needed to build Jaeger)"
mkdir -p "$JAEGER_HOME/src" "$(dirname "$JAEGER_LOG")"
wa_lock "$JAEGER_HOME/.lock" 3600 "the Jaeger build"
[[ -x "$JAEGER_BIN" ]] && exit 0
wa_log "jaeger: building $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION (one-time, several minutes; log $JAEGER_LOG)"
cd "$JAEGER_HOME/src"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
[[ -f go.mod ]] || "$go" mod init wabridge.local/jaeger >>"$JAEGER_LOG" 2>&1
"$go" get -tool "$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION" >>"$JAEGER_LOG" 2>&1 ||
  wa_die "jaeger: go get -tool $JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION failed" "$JAEGER_LOG"
nice -n 10 "$go" build -p 1 -o "$JAEGER_BIN.tmp" "$JAEGER_MODULE/cmd/jaeger" >>"$JAEGER_LOG" 2>&1 ||
  wa_die "jaeger: go build failed" "$JAEGER_LOG"
mv "$JAEGER_BIN.tmp" "$JAEGER_BIN"
wa_log "jaeger: $JAEGER_BIN ready"
