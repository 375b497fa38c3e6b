#!/usr/bin/env bash
# test.sh: what `make test` does, from a fresh clone:
#   1. install what is missing (deps.sh, ops-tools.sh) and build with ASan+UBSan (build/test),
#      and the release tree `make run` uses (build/run: -O2's warnings, errors here, see code
#      the sanitizer build's flow analysis does not)
#   2. start Kafka, Redis and FerretDB on the test ports (infra.sh --ports test), never the
#      ones `make run` uses
#   3. run every ctest test (unit, data, integration, fuzz-regression, style) with the
#      endpoints exported, then stop the test infrastructure, whatever happened
# Extra arguments go to ctest (e.g. make test ARGS="-L unit" is not supported by make; call
# deploy/local/test.sh -L unit directly).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
start=$(date +%s)

deploy/local/build.sh test
deploy/local/build.sh run
deploy/local/ops-tools.sh

export WA_INFRA_PROFILE=test
cleanup() { deploy/local/infra.sh stop --ports test || true; }
trap cleanup EXIT
deploy/local/infra.sh start --ports test
set -a
# shellcheck disable=SC1091
. "$root/var/test/env"
set +a
# the headless-browser tests' driver (playwright-core, cached; Chromium comes from deps.sh)
WA_NODE_PATH=$(deploy/local/browser.sh)
export WA_NODE_PATH
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}

ctest --test-dir build/test --output-on-failure -j2 --timeout 600 "$@"
echo "make test: all tests passed in $(( $(date +%s) - start )) s"
