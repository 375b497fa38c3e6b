#!/usr/bin/env bash
# chaos.sh: what `make chaos` does: the chaos suite (ctest label chaos, tests/chaos/) through
# test.sh (sanitizer build, test infrastructure on the test ports, stopped at the end) with
# WA_CHAOS_SECONDS per scenario (default 60), the broker outages of WA_CHAOS_BROKER_OUTAGES
# (seconds, default 5,30,120) and a Redis outage of WA_CHAOS_REDIS_DOWN (default 20 s), then
# each scenario's invariant and result. Loopback only; the scenarios that kill the broker or
# Redis start their own (tests/chaos/chaos_infra.h), never the test infrastructure's. make test
# runs the same scenarios for a few seconds each.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export WA_CHAOS_SECONDS=${WA_CHAOS_SECONDS:-60}
export WA_CHAOS_BROKER_OUTAGES=${WA_CHAOS_BROKER_OUTAGES:-5,30,120}
export WA_CHAOS_REDIS_DOWN=${WA_CHAOS_REDIS_DOWN:-20}
mkdir -p "$root/var/test"
log=$root/var/test/chaos.log
rc=0
deploy/local/test.sh -L chaos -V "$@" >"$log" 2>&1 || rc=$?
grep -E '^[0-9]+: chaos [a-z0-9-]+: ' "$log" | sed 's/^[0-9]*: //' || true
echo "make chaos: $([ $rc -eq 0 ] && echo 'every invariant held' || echo "FAILED (see $log)")"
exit $rc
