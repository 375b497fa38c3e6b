#!/usr/bin/env bash
# 50-gateway.sh: wa-gateway's POST /v1/messages on its whole path: API key check (Redis cache),
# GCRA rate limit (one Redis script), Idempotency-Key claim and record (Redis), the request
# checked with the Cloud API rules and published to outbound.request with acks=all before 202.
# wa-gateway-loadgen sends text messages with a unique Idempotency-Key each:
#   1. accepted messages/s at saturation (closed loop, BENCH_GATEWAY_CONNS connections)
#   2. latency p50/p99/p99.9 at a fixed offered rate (open loop, BENCH_GATEWAY_RATE/s)
# Knobs: BENCH_SECONDS (per run, default 10), BENCH_GATEWAY_CONNS (default 64),
# BENCH_GATEWAY_RATE (default 1000), BENCH_GATEWAY_PORT (default 18180).
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
seconds=${BENCH_SECONDS:-10}
conns=${BENCH_GATEWAY_CONNS:-64}
rate=${BENCH_GATEWAY_RATE:-1000}
port=${BENCH_GATEWAY_PORT:-18180}
dir=${WA_BENCH_DIR:-/tmp}/gateway
rm -rf "$dir"
mkdir -p "$dir"
prefix="bgw$(date +%s)."
export WA_TOPIC_PREFIX=$prefix WA_GATEWAY_KEY_PEPPER=bench-pepper
export WA_MONGO_URI=${WA_MONGO_URI%/*}/bench_gateway

# A key whose own limit is far above what one machine can send: the limiter still runs.
key=$("$WA_BIN_DIR/wa-gateway" keys create --name bench --scopes messages:send \
    --rate 100000000 --burst 100000000 2>>"$dir/keys.log")
wa_daemon_start "$dir/wa-gateway.log" env WA_LISTEN=127.0.0.1:$port WA_LOG_LEVEL=warn \
    "$WA_BIN_DIR/wa-gateway"
pid=$WA_DAEMON_PID
trap 'wa_daemons_stop 10 $pid' EXIT
wa_readyz_wait "http://127.0.0.1:$port" 15 "$pid" "$dir/wa-gateway.log"
echo "wa-gateway idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

lg=("$WA_BIN_DIR/wa-gateway-loadgen" -k "$key" -i)
# warm-up: the topic is created on first use
"${lg[@]}" -c 8 -d 3 "127.0.0.1:$port" >/dev/null || true
printf 'saturation: '
"${lg[@]}" -c "$conns" -d "$seconds" "127.0.0.1:$port"
printf 'fixed rate %s/s: ' "$rate"
"${lg[@]}" -c "$conns" -d "$seconds" -r "$rate" "127.0.0.1:$port"
