#!/usr/bin/env bash
# 10-ingest.sh: wa-ingest's POST /webhook on the full durable path (HMAC check, Redis dedup
# claim, Kafka acks=all on the local broker) driven by wa-ingest-loadgen with signed, realistic
# webhooks and unique wamids. Prints requests/s and latency p50/p99/p99.9 at fixed offered
# rates (open loop, latency from the scheduled send time) and at saturation, plus idle RSS.
# Targets: >= 20,000 req/s at saturation, p99 <= 5 ms at 5,000 req/s, idle RSS
# <= 16 MB. Knobs: BENCH_SECONDS (per run, default 10), BENCH_RATES (default "1000 5000 10000"),
# BENCH_CONNS (fixed rates, default 64), BENCH_SAT_CONNS (one saturation run per count, default
# "64 256": Meta delivers from many connections at once), BENCH_WARMUP (seconds at 5,000/s before
# anything is measured, default 30). Each saturation run also prints the CPU used by wa-ingest, the
# load generator, and (when found by pgrep) Kafka and Redis, in % of one core and in CPU
# microseconds per answered request: they share the machine, so read throughput with them.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
seconds=${BENCH_SECONDS:-10}
rates=${BENCH_RATES:-1000 5000 10000}
conns=${BENCH_CONNS:-64}
sat_conns=${BENCH_SAT_CONNS:-64 256}
warmup=${BENCH_WARMUP:-30}
port=${BENCH_INGEST_PORT:-18181}
dir=$WA_BENCH_DIR/ingest
rm -rf "$dir"
mkdir -p "$dir"
prefix="bench$(date +%s)."

# Dedup keys of a run expire after 10 min, not 7 days: each run leaves ~800k keys, and a Redis
# grown to 8.8 M of them (twenty runs) spent 23-27 µs of CPU per request instead of 6-9.
wa_daemon_start "$dir/wa-ingest.log" env WA_LISTEN=127.0.0.1:$port WA_TOPIC_PREFIX=$prefix \
    WA_SPOOL_DIR=$dir/spool WA_LOG_LEVEL=warn WA_DEDUP_TTL=10m WA_APP_SECRET=bench-secret \
    "$WA_BIN_DIR/wa-ingest"
pid=$WA_DAEMON_PID
trap 'wa_daemons_stop 10 $pid' EXIT
wa_readyz_wait "http://127.0.0.1:$port" 10 "$pid" "$dir/wa-ingest.log"
echo "wa-ingest idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

lg="$WA_BIN_DIR/wa-ingest-loadgen -s bench-secret"
# Warm-up: topics are created on first use, and the broker's JIT needs ~30 s of traffic before
# its latency settles (docs/operations.md); nothing of this run is reported.
$lg -c "$conns" -r 5000 -d "$warmup" -w 0 "127.0.0.1:$port" >/dev/null || true
rc=0
for r in $rates; do
    $lg -c "$conns" -r "$r" -d "$seconds" "127.0.0.1:$port" || rc=1
done
ticks() { wa_cpu_ticks "$1"; }
# the processes listening on the ports this run uses (the test and run profiles may both be up)
kafka_port=${WA_KAFKA_BROKERS##*:}
kpid=$(wa_port_pid "${kafka_port:-9092}")
redis_port=$(printf '%s' "${WA_REDIS_URL:-}" | sed -E 's#^.*:([0-9]+)(/[0-9]*)?$#\1#')
rpid=$(wa_port_pid "${redis_port:-6379}")
for c in $sat_conns; do
    $lg -c "$c" -r 0 -d "$seconds" -w 1 "127.0.0.1:$port" >"$dir/saturation.out" &
    lgpid=$!
    sleep 1 # the load generator's warm-up second
    t0=$(date +%s%N) i0=$(ticks $pid) k0=$(ticks "$kpid") r0=$(ticks "$rpid") l0=$(ticks $lgpid)
    sleep "$((seconds - 1))"
    t1=$(date +%s%N) i1=$(ticks $pid) k1=$(ticks "$kpid") r1=$(ticks "$rpid") l1=$(ticks $lgpid)
    wait $lgpid || rc=1
    cat "$dir/saturation.out"
    ok=$(grep -o 'ok=[0-9]*' "$dir/saturation.out" | cut -d= -f2)
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" -v ns=$((t1 - t0)) -v ok="${ok:-0}" -v secs="$seconds" -v i=$((i1 - i0)) \
        -v k=$((k1 - k0)) -v r=$((r1 - r0)) -v l=$((l1 - l0)) 'BEGIN {
        w = ns / 1e9; rate = ok / secs
        printf "  CPU (%% of one core): wa-ingest=%.0f kafka=%.0f redis=%.0f loadgen=%.0f\n",
            100 * i / hz / w, 100 * k / hz / w, 100 * r / hz / w, 100 * l / hz / w
        if (rate > 0)
            printf "  CPU us per request: wa-ingest=%.1f kafka=%.1f redis=%.1f loadgen=%.1f\n",
                1e6 * i / hz / w / rate, 1e6 * k / hz / w / rate, 1e6 * r / hz / w / rate,
                1e6 * l / hz / w / rate
    }'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wa-ingest RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^wa_ingest_(requests_total|duplicates_total|dedup_failures_total|spool_files)' || true
exit $rc
