#!/usr/bin/env bash
# 20-cloudsim.sh: wa-cloudsim's send endpoint (POST /v21.0/<phone_number_id>/messages) with its
# limits switched off and webhook delivery disabled, driven by wa-loadgen (keep-alive
# connections, closed loop). Prints sends/s. Target (issue 4): >= 20,000 sends/s, so the
# simulator is never the bottleneck of the other benchmarks.
# Knobs: BENCH_SECONDS (default 10), BENCH_CONNS (default 64).
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNS:-64}
port=${BENCH_CLOUDSIM_PORT:-18190}
dir=$WA_BENCH_DIR/cloudsim
mkdir -p "$dir"

WA_LISTEN=127.0.0.1:$port WA_WEBHOOK_URL= WA_SIM_LIMITS=off WA_LOG_LEVEL=warn \
    "$WA_BIN_DIR/wa-cloudsim" >"$dir/wa-cloudsim.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "wa-cloudsim: ${seconds}s, $conns connections, limits off"
"$WA_BIN_DIR/wa-loadgen" -c "$conns" -d "$seconds" "127.0.0.1:$port"
