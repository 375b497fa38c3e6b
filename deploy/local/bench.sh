#!/usr/bin/env bash
# bench.sh: what `make bench` does:
#   1. build the release tree (build/run, no sanitizers: figures are for the real binaries)
#   2. start Kafka, Redis and FerretDB on the default ports (infra.sh start) unless they are
#      already running; stop them again at the end only if this script started them
#   3. run every deploy/local/bench.d/*.sh in name order (10-ingest.sh, 11-ingest-plain.sh, ...), each printing its
#      figures; a benchmark that fails is reported and the others still run
#   4. after each benchmark, delete the topics it made (each run uses a topic prefix of its own,
#      and a broker holding the topics of many runs is slower: services/router/README.md)
# Environment given to the benchmarks: the infra's env file (WA_KAFKA_BROKERS, WA_REDIS_URL,
# WA_MONGO_URI, WA_TOPIC_PREFIX), WA_BIN_DIR=build/run/bin, WA_BENCH_DIR=var/bench (scratch).
# Add a benchmark by dropping an executable NN-name.sh into bench.d/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

deploy/local/build.sh run

started=0
if ! deploy/local/infra.sh status >/dev/null 2>&1; then
    deploy/local/infra.sh start
    started=1
fi
cleanup() {
    if [ "$started" = 1 ]; then
        deploy/local/infra.sh stop || true
    fi
}
trap cleanup EXIT

set -a
# shellcheck disable=SC1091
. "$root/var/run/env"
set +a
export WA_BIN_DIR=$root/build/run/bin
export WA_SANDBOX=1 # benchmarks run against wa-cloudsim with its public sandbox secrets
export WA_BENCH_DIR=$root/var/bench
mkdir -p "$WA_BENCH_DIR"

failed=()
topic_names() { "$WA_BIN_DIR/wa-infra" kafka-list "$WA_KAFKA_BROKERS" 10000 | cut -d' ' -f1 | sort; }
for b in "$root"/deploy/local/bench.d/*.sh; do
    [ -e "$b" ] || continue
    name=$(basename "$b" .sh)
    echo "== bench $name"
    before=$(topic_names) || before=
    if ! bash "$b"; then
        echo "== bench $name FAILED"
        failed+=("$name")
    fi
    if [ -n "$before" ]; then
        # the broker's own topics (__consumer_offsets, made by the first group) stay
        mapfile -t made < <(comm -13 <(printf '%s\n' "$before") <(topic_names || true) | grep -v '^__')
        if [ "${#made[@]}" -gt 0 ]; then
            "$WA_BIN_DIR/wa-infra" kafka-delete "$WA_KAFKA_BROKERS" "${made[@]}" >/dev/null ||
                echo "== bench $name: its ${#made[@]} topics were not deleted"
        fi
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "make bench: failed: ${failed[*]}"
    exit 1
fi
echo "make bench: done"
