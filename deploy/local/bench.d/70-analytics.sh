#!/usr/bin/env bash
# 70-analytics.sh: wa-analytics on its own topic prefix and MongoDB database:
#   1. events consumed into MongoDB at saturation: wa-ingest turns signed webhooks, sent at
#      saturation for BENCH_ANALYTICS_BACKLOG seconds (default 5; half delivered statuses, half
#      inbound messages), into events while
#      wa-analytics is stopped; wa-analytics then starts on that backlog (batches of
#      WA_ANALYTICS_BATCH, one bulk write each) and the rate at which events are written and
#      committed (the sum of wa_analytics_batch_events), from the daemon's readiness to the
#      last batch written within BENCH_ANALYTICS_WINDOW seconds (default 40), is the rate.
#   2. the query time of a 30-day GET /v1/analytics/summary (and of the series by day) over
#      BENCH_ANALYTICS_MESSAGES message documents (default 1000000, the issue's figure: seeding
#      and rebuilding take about 20 minutes on FerretDB) spread over the 30 days, written straight
#      into MongoDB in bulk by tools/loadgen/seed_analytics.py (with the Python of
#      deploy/local/ops-tools.sh, which has pymongo), then `wa-analytics rebuild` (the rows and
#      engagement documents from them, timed); the first and a second (warm) query.
# Everything shares the machine (Kafka, Redis, FerretDB, the load generator): read the figures
# with that in mind.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
backlog=${BENCH_ANALYTICS_BACKLOG:-5}
messages=${BENCH_ANALYTICS_MESSAGES:-1000000}
parts=" ${BENCH_ANALYTICS_PARTS:-consume query} " # a subset runs only those
port=${BENCH_ANALYTICS_PORT:-18184}
ingest_port=${BENCH_ANALYTICS_INGEST_PORT:-18189}
dir=${WA_BENCH_DIR:-/tmp}/analytics
rm -rf "$dir"
mkdir -p "$dir"
stamp=$(date +%s%N | cut -c1-13)
prefix="ban$stamp."
url=http://127.0.0.1:$port
trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"' EXIT

# start_analytics LOG DB [VAR=value...]
start_analytics() {
    local log=$1 db=$2
    shift 2
    wa_daemon_start "$log" env WA_LISTEN=127.0.0.1:$port WA_TOPIC_PREFIX=$prefix \
        WA_MONGO_URI="${WA_MONGO_URI%/*}/$db" WA_LOG_LEVEL=warn WA_ANALYTICS_GROUP="bench$stamp" \
        WA_ANALYTICS_KPI_INTERVAL=1h "$@" "$WA_BIN_DIR/wa-analytics"
    an_pid=$WA_DAEMON_PID
    wa_readyz_wait "$url" 60 "$an_pid" "$log"
}

events_done() { # events of the batches written to MongoDB and committed
    { curl -fsS "$url/metrics" 2>/dev/null || true; } |
        awk '/^wa_analytics_batch_events_sum/ {n += $2} END {print n + 0}'
}

if [[ "$parts" == *" consume "* ]]; then
    wa_daemon_start "$dir/wa-ingest.log" env WA_LISTEN=127.0.0.1:$ingest_port \
        WA_TOPIC_PREFIX=$prefix WA_SPOOL_DIR="$dir/spool" WA_LOG_LEVEL=warn WA_DEDUP_TTL=10m \
        WA_APP_SECRET=bench-secret "$WA_BIN_DIR/wa-ingest"
    ingest_pid=$WA_DAEMON_PID
    wa_readyz_wait "http://127.0.0.1:$ingest_port" 30 "$ingest_pid" "$dir/wa-ingest.log"
    "$WA_BIN_DIR/wa-ingest-loadgen" -s bench-secret -c 32 -r 0 -d "$backlog" -w 0 \
        "127.0.0.1:$ingest_port" >"$dir/ingest-loadgen.txt" || true
    wa_daemons_stop 10 "$ingest_pid"
    start_analytics "$dir/wa-analytics-consume.log" "benchan$stamp"
    first=-1 first_t=0 last=0 last_t=0 still=0
    deadline=$((SECONDS + ${BENCH_ANALYTICS_WINDOW:-40})) # measured over at most this window
    while ((SECONDS < deadline)); do
        c=$(events_done)
        now=$(date +%s.%N)
        if [ "$first" = -1 ]; then
            first=$c first_t=$now # the daemon just became ready
        fi
        if [ "$c" -gt "$last" ]; then
            last=$c last_t=$now still=0
        elif [ "$last" -gt 0 ]; then
            still=$((still + 1))
            [ "$still" -ge 200 ] && break # nothing new for 20 s: the backlog is done
        fi
        sleep 0.1
    done
    wa_daemons_stop 10 "$an_pid"
    python3 - "$first" "$first_t" "$last" "$last_t" <<'PY'
import sys
first, t0, last, t1 = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if last <= first or t1 <= t0:
    print("events:           none consumed (see the logs)"); sys.exit(1)
print("events written:   %d in %.2f s: %.0f events/s into MongoDB (statuses and inbound "
      "messages, batches of WA_ANALYTICS_BATCH)" % (last - first, t1 - t0, (last - first) / (t1 - t0)))
PY
fi

if [[ "$parts" == *" query "* ]]; then
    eval "$("$root/deploy/local/ops-tools.sh" --print)"
    "$root/deploy/local/ops-tools.sh" >/dev/null
    "$OPS_PYTHON" "$root/tools/loadgen/seed_analytics.py" "${WA_MONGO_URI%/*}/" "benchq$stamp" \
        "$messages" 30
    # the seeder writes message documents only: the rows come from them (README "Rebuilding")
    rebuild_start=$(date +%s.%N)
    WA_MONGO_URI="${WA_MONGO_URI%/*}/benchq$stamp" WA_LOG_LEVEL=warn \
        "$WA_BIN_DIR/wa-analytics" rebuild
    python3 -c "import sys; print('rebuild:          %.1f s (every row from the %s messages)' % (float(sys.argv[2]) - float(sys.argv[1]), sys.argv[3]))" \
        "$rebuild_start" "$(date +%s.%N)" "$messages"
    start_analytics "$dir/wa-analytics-query.log" "benchq$stamp" \
        WA_ANALYTICS_MAX_SCAN=$((messages * 2 + 1000))
    from=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)
    to=$(date -u -d '1 minute' +%Y-%m-%dT%H:%M:%SZ)
    for run in first warm; do
        out=$(curl -sS -o "$dir/summary-$run.json" -w '%{http_code} %{time_total}' \
            --max-time 600 "$url/v1/analytics/summary?from=$from&to=$to") || out="000 600"
        python3 - "$run" "$out" "$dir/summary-$run.json" <<'PY'
import json, sys
run, (status, secs), path = sys.argv[1], sys.argv[2].split(), sys.argv[3]
try:
    sent = json.load(open(path))["totals"]["sent"]
except Exception:
    sent = "-"
print("30-day summary (%s): HTTP %s in %.2f s (totals.sent %s)" % (run, status, float(secs), sent))
PY
    done
    out=$(curl -sS -o "$dir/series.json" -w '%{http_code} %{time_total}' --max-time 600 \
        "$url/v1/analytics/series?from=$from&to=$to&granularity=day") || out="000 600"
    python3 - "$out" "$dir/series.json" <<'PY'
import json, sys
(status, secs), path = sys.argv[1].split(), sys.argv[2]
try:
    n = len(json.load(open(path))["series"])
except Exception:
    n = "-"
print("30-day series by day: HTTP %s in %.2f s (%s days)" % (status, float(secs), n))
PY
fi
