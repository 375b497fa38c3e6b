#!/usr/bin/env bash
# 11-ingest-plain.sh: wa-ingest against a plain durable receiver (tools/loadgen/plain-receiver:
# Node.js doing the same durable work per webhook: HMAC check, Redis SET NX PX per message or
# status id, Kafka acks=all with an idempotent producer, 200 only after both) on the same broker
# and Redis in the same run. wa-ingest-loadgen drives each in turn at one open-loop rate,
# alternating (wa-ingest, plain, wa-ingest, plain, ...) so the machine's noise falls on both;
# prints every round, the median of each side's p50 and p99, and the verdict against the target:
# wa-ingest p99 <= 5 ms and p50 no higher than the plain receiver's.
# Knobs: PLAIN_ROUNDS (rounds each, default 3), PLAIN_SECONDS (per round, default 10),
# PLAIN_RATE (default 1000), BENCH_CONNS (default 64), PLAIN_WARMUP (seconds at the rate for
# each before anything is measured, default 20). The receiver's node_modules are installed with
# `npm ci` from its package-lock.json on first use.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
rounds=${PLAIN_ROUNDS:-3}
seconds=${PLAIN_SECONDS:-10}
rate=${PLAIN_RATE:-1000}
conns=${BENCH_CONNS:-64}
warmup=${PLAIN_WARMUP:-20}
iport=${BENCH_INGEST_PORT:-18181}
pport=${BENCH_PLAIN_PORT:-18182}
recv=$root/tools/loadgen/plain-receiver
dir=$WA_BENCH_DIR/ingest-plain
rm -rf "$dir"
mkdir -p "$dir"
stamp=$(date +%s)

command -v npm >/dev/null 2>&1 || wa_die "npm not found (it comes with Debian's nodejs from deps.sh)"
if [[ ! -d $recv/node_modules || $recv/package-lock.json -nt $recv/node_modules ]]; then
    (cd "$recv" && npm ci --no-audit --no-fund --loglevel=error) || wa_die "npm ci in $recv failed"
fi

wa_daemon_start "$dir/wa-ingest.log" env WA_LISTEN=127.0.0.1:$iport \
    WA_TOPIC_PREFIX="bench$stamp." WA_SPOOL_DIR=$dir/spool WA_LOG_LEVEL=warn WA_DEDUP_TTL=10m \
    WA_APP_SECRET=bench-secret "$WA_BIN_DIR/wa-ingest"
ipid=$WA_DAEMON_PID
wa_daemon_start "$dir/plain.log" env PLAIN_LISTEN=127.0.0.1:$pport \
    PLAIN_TOPIC_PREFIX="plain$stamp." PLAIN_SECRET=bench-secret PLAIN_DEDUP_TTL_MS=600000 \
    KAFKAJS_NO_PARTITIONER_WARNING=1 node "$recv/receiver.js"
ppid_=$WA_DAEMON_PID
trap 'wa_daemons_stop 10 $ipid $ppid_' EXIT
wa_readyz_wait "http://127.0.0.1:$iport" 10 "$ipid" "$dir/wa-ingest.log"
wa_readyz_wait "http://127.0.0.1:$pport" 20 "$ppid_" "$dir/plain.log"

lg="$WA_BIN_DIR/wa-ingest-loadgen -s bench-secret -c $conns -r $rate"
# topics are created on first use and both clients settle their connections: not measured
$lg -d "$warmup" -w 0 "127.0.0.1:$iport" >/dev/null || true
$lg -d "$warmup" -w 0 "127.0.0.1:$pport" >/dev/null || true
rc=0
for ((i = 1; i <= rounds; i++)); do
    for side in wa-ingest plain; do
        p=$iport
        [[ $side == plain ]] && p=$pport
        out=$($lg -d "$seconds" -w 1 "127.0.0.1:$p") || rc=1
        echo "round $i $side: ${out#wa-ingest bench: }"
        echo "$side $(grep -o 'p50=[0-9.]*' <<<"$out" | cut -d= -f2) $(grep -o 'p99=[0-9.]*' <<<"$out" | cut -d= -f2)" >>"$dir/rounds"
    done
done
awk -v rate="$rate" -v rounds="$rounds" '
function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 == "wa-ingest" { n++; i50[n] = $2; i99[n] = $3 }
$1 == "plain" { m++; p50[m] = $2; p99[m] = $3 }
END {
    a50 = median(i50, n); a99 = median(i99, n); b50 = median(p50, m); b99 = median(p99, m)
    printf "at %d/s, median of %d rounds each:  wa-ingest p50 %.2f ms p99 %.2f ms | plain receiver p50 %.2f ms p99 %.2f ms\n", rate, rounds, a50, a99, b50, b99
    printf "target (wa-ingest p99 <= 5 ms, p50 <= plain receiver p50): %s\n", (a99 <= 5 && a50 <= b50) ? "met" : "NOT met"
}' "$dir/rounds"
exit $rc
