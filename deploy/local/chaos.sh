#!/usr/bin/env bash
# chaos.sh: what `make chaos` does: build with ASan+UBSan (build/test), start the test
# infrastructure (infra.sh --ports test, as make test does), run the chaos suite (ctest label
# chaos) for WA_CHAOS_SECONDS per scenario (default 60) and print each scenario's invariant and
# result, then stop the infrastructure. Loopback only. make test runs the same scenarios for a
# few seconds each.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

deploy/local/build.sh test
export WA_INFRA_PROFILE=test
cleanup() { deploy/local/infra.sh stop --ports test || true; }
trap cleanup EXIT
deploy/local/infra.sh start --ports test
set -a
# shellcheck disable=SC1091
. "$root/var/test/env"
set +a
export WA_CHAOS_SECONDS=${WA_CHAOS_SECONDS:-60}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
log=$root/var/test/chaos.log
rc=0
ctest --test-dir build/test -L chaos --output-on-failure --timeout 3600 -V "$@" >"$log" 2>&1 || rc=$?
grep -E '^[0-9]+: chaos [a-z0-9-]+: ' "$log" | sed 's/^[0-9]*: //' || true
echo "make chaos: $([ $rc -eq 0 ] && echo 'every invariant held' || echo "FAILED (see $log)")"
exit $rc
