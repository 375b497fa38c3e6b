#!/usr/bin/env bash
# 15-ingest-cost.sh: instructions per webhook on wa-ingest's whole request path (every thread:
# HTTP, HMAC, split, dedup claims, the two Kafka records, librdkafka's own threads), counted by
# valgrind's callgrind, so the figure does not move with the machine's load or clock speed the
# way CPU time does.
#
# wa-ingest runs under callgrind with instrumentation off. After a warm-up (topics created,
# claims script loaded) three windows are counted: idle for COST_IDLE seconds (timers,
# librdkafka's statistics), then signed webhooks from wa-ingest-loadgen (open loop) for
# COST_SECONDS at COST_RATE/2 and again at COST_RATE per second (callgrind runs the daemon ~50x
# slower: keep the rate modest). The figure is the marginal cost:
#   (instructions at the full rate - at the half rate - idle instructions/s x the windows'
#    length difference) / (webhooks answered 200 at the full rate - at the half rate)
# so work done per second whatever the traffic (timers) cancels out, as it would be spread over
# far more webhooks at production rates. librdkafka's statistics (the readiness probe, every
# WA_KAFKA_PROBE_INTERVAL) are per-second work that grows with the traffic (its latency
# histograms fill up), so they would not cancel: the daemon runs with a 10 s probe here; the
# idle figure shows what per-second work is left. Also prints the functions with the most
# instructions of their own per webhook in the full-rate window: where to cut.
# Knobs: COST_RATE (default 30), COST_SECONDS (20), COST_IDLE (10). Needs valgrind
# (deploy/local/deps.sh installs it). Run by deploy/local/bench.sh, or alone with WA_BIN_DIR,
# WA_BENCH_DIR, WA_KAFKA_BROKERS, WA_REDIS_URL set.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
: "${WA_BENCH_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
command -v valgrind >/dev/null || wa_die "valgrind not found: run deploy/local/deps.sh"
rate=${COST_RATE:-30}
seconds=${COST_SECONDS:-20}
idle=${COST_IDLE:-10}
port=${BENCH_COST_PORT:-18182}
dir=$WA_BENCH_DIR/ingest-cost
rm -rf "$dir"
mkdir -p "$dir"

wa_daemon_start "$dir/wa-ingest.log" env WA_LISTEN=127.0.0.1:$port \
    WA_TOPIC_PREFIX="cost$(date +%s)." WA_SPOOL_DIR="$dir/spool" WA_LOG_LEVEL=warn \
    WA_DEDUP_TTL=10m WA_APP_SECRET=bench-secret WA_KAFKA_PROBE_INTERVAL=10s \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
    "$WA_BIN_DIR/wa-ingest"
pid=$WA_DAEMON_PID
trap 'wa_daemons_stop 20 $pid' EXIT
wa_readyz_wait "http://127.0.0.1:$port" 120 "$pid" "$dir/wa-ingest.log"

lg="$WA_BIN_DIR/wa-ingest-loadgen -s bench-secret -c 64"
$lg -r "$rate" -d 5 -w 0 "127.0.0.1:$port" >/dev/null || true # warm-up, not counted
ctl() { callgrind_control "$@" "$pid" >/dev/null; }
ctl -i on
ctl -z
sleep "$idle"
ctl -d idle
# window NAME RATE: counts webhooks at RATE/s for $seconds plus the last answers' callbacks;
# prints the window's length in ms
window() {
    local t0 t1
    t0=$(date +%s%N)
    $lg -r "$2" -d "$seconds" -w 0 "127.0.0.1:$port" >"$dir/$1.out" || true
    sleep 2
    ctl -d "$1"
    t1=$(date +%s%N)
    sed 's/^/  /' "$dir/$1.out" >&2
    echo $(((t1 - t0) / 1000000))
}
ms_half=$(window half $((rate / 2)))
ms_full=$(window full "$rate")
ctl -i off

totals() { sed -n 's/^totals: //p' "$1"; }
answered() { sed -n 's/.* ok=\([0-9]*\) .*/\1/p' "$dir/$1.out"; }
files=("$dir"/cg.out.*)
((${#files[@]} >= 3)) || wa_die "callgrind wrote no dumps (see $dir/wa-ingest.log)"
python3 - "$(totals "${files[0]}")" "$idle" "$(totals "${files[1]}")" "$ms_half" "$(answered half)" \
    "$(totals "${files[2]}")" "$ms_full" "$(answered full)" <<'PY'
import sys
idle_ir, idle_s, h_ir, h_ms, h_ok, f_ir, f_ms, f_ok = (int(x or 0) for x in sys.argv[1:])
idle_rate = idle_ir / idle_s
dn = f_ok - h_ok
marginal = (f_ir - h_ir - idle_rate * (f_ms - h_ms) / 1000) / dn if dn > 0 else float("nan")
average = (f_ir - idle_rate * f_ms / 1000) / f_ok if f_ok else float("nan")
print("wa-ingest cost: %.0f instructions per webhook (marginal: %d webhooks at the full rate, "
      "%d at half; idle %.2f M instructions/s); average in the full-rate window less idle: %.0f"
      % (marginal, f_ok, h_ok, idle_rate / 1e6, average))
PY
# Own instructions per webhook of the costliest functions in the full-rate window.
ok=$(answered full)
if [ "${ok:-0}" -gt 0 ]; then
    echo "  most instructions of their own, per webhook (full-rate window, per-second work included):"
    callgrind_annotate "${files[2]}" 2>/dev/null | python3 -c '
import re, sys
n = int(sys.argv[1])
rows = [l for l in sys.stdin if re.match(r"^\s*[0-9,]+ \(\s*[0-9.]+%\)\s+\S", l)]
for l in rows[1:13]:
    m = re.match(r"^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*?)\s*(\[.*\])?$", l)
    lib = (m.group(3) or "").rsplit("/", 1)[-1].rstrip("]")
    print("    %8.0f  %s  %s" % (int(m.group(1).replace(",", "")) / n, m.group(2), lib))
' "$ok"
fi
