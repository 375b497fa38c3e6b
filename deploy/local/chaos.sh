#!/usr/bin/env bash
# chaos.sh: what `make chaos` does: the chaos suite (ctest label chaos, tests/chaos/) through
# test.sh (sanitizer build, test infrastructure on the test ports, stopped at the end) with
# WA_CHAOS_SECONDS per scenario (default 60), then each scenario's invariant and result. Loopback
# only. make test runs the same scenarios for a few seconds each.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export WA_CHAOS_SECONDS=${WA_CHAOS_SECONDS:-60}
mkdir -p "$root/var/test"
log=$root/var/test/chaos.log
rc=0
deploy/local/test.sh -L chaos -V "$@" >"$log" 2>&1 || rc=$?
grep -E '^[0-9]+: chaos [a-z0-9-]+: ' "$log" | sed 's/^[0-9]*: //' || true
echo "make chaos: $([ $rc -eq 0 ] && echo 'every invariant held' || echo "FAILED (see $log)")"
exit $rc
