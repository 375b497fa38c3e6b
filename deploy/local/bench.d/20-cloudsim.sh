#!/usr/bin/env bash
# 20-cloudsim.sh: wa-cloudsim's send endpoint (POST /v21.0/<phone_number_id>/messages) with its
# limits switched off and webhook delivery disabled, driven by wa-loadgen (keep-alive
# connections, closed loop). Prints sends/s. Target: >= 20,000 sends/s, so the
# simulator is never the bottleneck of the other benchmarks.
# Knobs: BENCH_SECONDS (default 10), BENCH_CONNS (default 64).
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNS:-64}
port=${BENCH_CLOUDSIM_PORT:-18190}
dir=$WA_BENCH_DIR/cloudsim
mkdir -p "$dir"

wa_daemon_start "$dir/wa-cloudsim.log" env WA_LISTEN=127.0.0.1:$port WA_WEBHOOK_URL= \
    WA_SIM_LIMITS=off WA_LOG_LEVEL=warn "$WA_BIN_DIR/wa-cloudsim"
pid=$WA_DAEMON_PID
trap 'wa_daemons_stop 10 $pid' EXIT
wa_readyz_wait "http://127.0.0.1:$port" 10 "$pid" "$dir/wa-cloudsim.log"
echo "wa-cloudsim: ${seconds}s, $conns connections, limits off"
"$WA_BIN_DIR/wa-loadgen" -c "$conns" -d "$seconds" "127.0.0.1:$port"
