#!/usr/bin/env bash
# 10-ingest.sh: wa-ingest's POST /webhook on the full durable path (HMAC check, Redis dedup
# claim, Kafka acks=all on the local broker) driven by wa-ingest-loadgen with signed, realistic
# webhooks and unique wamids. Prints requests/s and latency p50/p99/p99.9 at fixed offered
# rates (open loop, latency from the scheduled send time) and at saturation, plus idle RSS.
# Targets (issue 3): >= 20,000 req/s at saturation, p99 <= 5 ms at 5,000 req/s, idle RSS
# <= 16 MB. Knobs: BENCH_SECONDS (per run, default 10), BENCH_RATES (default "1000 5000 10000"),
# BENCH_CONNS (default 64).
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
seconds=${BENCH_SECONDS:-10}
rates=${BENCH_RATES:-1000 5000 10000}
conns=${BENCH_CONNS:-64}
port=${BENCH_INGEST_PORT:-18181}
dir=$WA_BENCH_DIR/ingest
rm -rf "$dir"
mkdir -p "$dir"
prefix="bench$(date +%s)."

WA_LISTEN=127.0.0.1:$port WA_TOPIC_PREFIX=$prefix WA_SPOOL_DIR=$dir/spool WA_LOG_LEVEL=warn \
    WA_APP_SECRET=bench-secret "$WA_BIN_DIR/wa-ingest" >"$dir/wa-ingest.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "wa-ingest not ready"; cat "$dir/wa-ingest.log"; exit 1; }
echo "wa-ingest idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

lg="$WA_BIN_DIR/wa-ingest-loadgen -s bench-secret -c $conns"
# Warm-up: topics are created on first use; the first acknowledgements are slow.
$lg -r 500 -d 2 -w 0 "127.0.0.1:$port" >/dev/null || true
rc=0
for r in $rates; do
    $lg -r "$r" -d "$seconds" "127.0.0.1:$port" || rc=1
done
$lg -r 0 -d "$seconds" "127.0.0.1:$port" || rc=1
echo "wa-ingest RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^wa_ingest_(requests_total|duplicates_total|dedup_failures_total|spool_files)' || true
exit $rc
