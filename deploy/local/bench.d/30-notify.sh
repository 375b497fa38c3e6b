#!/usr/bin/env bash
# 30-notify.sh: wa-notify against wa-cloudsim (its limits off), requests produced to Kafka by
# wa-notify-loadgen, sends measured at the simulator (GET /_sim/messages):
#   1. sends/s at saturation (WA_NOTIFY_MPS=100000, BENCH_NOTIFY_N requests, default 20000)
#   2. pacing accuracy: send rate over 10 s with WA_NOTIFY_MPS=80 and =1000 (backlog of 12 s)
#   3. request-to-send latency p50/p99 at 500 messages/s offered for 10 s
# Targets: >= 5,000 sends/s; pacing within +-2 %; p99 <= 20 ms at 500 messages/s.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
n=${BENCH_NOTIFY_N:-20000}
sim_port=${BENCH_SIM_PORT:-18190}
nt_port=${BENCH_NOTIFY_PORT:-18183}
dir=${WA_BENCH_DIR:-/tmp}/notify
rm -rf "$dir"
mkdir -p "$dir"
sim_url=http://127.0.0.1:$sim_port
trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"' EXIT

wa_daemon_start "$dir/wa-cloudsim.log" env WA_LISTEN=127.0.0.1:$sim_port WA_SIM_LIMITS=off \
    WA_WEBHOOK_URL= WA_LOG_LEVEL=warn WA_SIM_HISTORY=100000 "$WA_BIN_DIR/wa-cloudsim"
wa_readyz_wait "$sim_url" 15 "$WA_DAEMON_PID" "$dir/wa-cloudsim.log"

# run <name> <mps> <loadgen args...>: a fresh wa-notify with its own topic prefix per run
run() {
    local name=$1 mps=$2 prefix
    shift 2
    prefix="bnt$(date +%s%N | cut -c1-13)."
    curl -fsS -X POST "$sim_url/_sim/reset" >/dev/null
    wa_daemon_start "$dir/wa-notify-$name.log" env WA_LISTEN=127.0.0.1:$nt_port \
        WA_TOPIC_PREFIX=$prefix WA_GRAPH_URL=$sim_url/v21.0 WA_NOTIFY_MPS=$mps \
        WA_LOG_LEVEL=warn WA_NOTIFY_MAX_HTTP=128 "$WA_BIN_DIR/wa-notify"
    local pid=$WA_DAEMON_PID
    wa_readyz_wait "http://127.0.0.1:$nt_port" 15 "$pid" "$dir/wa-notify-$name.log"
    printf '%-22s ' "$name:"
    "$WA_BIN_DIR/wa-notify-loadgen" --brokers "$WA_KAFKA_BROKERS" --prefix "$prefix" \
        --sim "$sim_url" "$@" || echo "(incomplete)"
    wa_daemons_stop 10 "$pid"
}

run saturation 100000 --n "$n" --window 1
run pacing-80 80 --n 960 --window 10
run pacing-1000 1000 --n 12000 --window 10
run latency-500 100000 --n 5000 --rate 500 --window 10
