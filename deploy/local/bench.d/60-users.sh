#!/usr/bin/env bash
# 60-users.sh: wa-users on its own topic prefix and MongoDB database:
#   1. import: BENCH_USERS_N contacts (default 2000) in one POST /v1/contacts/import (lines/s)
#   2. contact reads/s, GET /v1/contacts/{id} by wa-loadgen -g (closed loop, 32 connections,
#      BENCH_USERS_SECONDS each, default 10): "spread" reads a different contact each time
#      (every one of the N in turn), "hot" the same contact again and again. First cached
#      (wa-users' default read cache, WA_USERS_CACHE_TTL 60s), after every contact was read
#      once (the warm-up, itself timed: N cache misses), so "spread" measures hits; then
#      uncached: wa-users restarted with BENCH_USERS_UNCACHED_ENV (default
#      "WA_USERS_CACHE_TTL=0": every read is a MongoDB find; empty: no uncached runs).
#   3. event consumption: wa-ingest turns signed webhooks, sent at saturation for
#      BENCH_USERS_BACKLOG seconds (default 5; half inbound messages from distinct customers,
#      half delivered statuses), into events
#      while wa-users is stopped; wa-users then starts on that backlog and the rate at which
#      it finishes events (wa_users_events_total applied + no_change + invalid), timed from
#      the process start (so its start-up counts against it), is the consumption rate, over at most BENCH_USERS_WINDOW seconds (default 20), on a database of
#      its own that starts empty (on FerretDB a write's cost grows with the collection).
# Everything shares the machine (Kafka, Redis, FerretDB, the load generator): read the figures
# with that in mind.
set -euo pipefail
: "${WA_BIN_DIR:?run through deploy/local/bench.sh}"
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
n=${BENCH_USERS_N:-2000}
seconds=${BENCH_USERS_SECONDS:-10}
backlog=${BENCH_USERS_BACKLOG:-5}
uncached_env=${BENCH_USERS_UNCACHED_ENV-WA_USERS_CACHE_TTL=0}
parts=" ${BENCH_USERS_PARTS:-import reads events} " # a subset runs only those
port=${BENCH_USERS_PORT:-18185}
ingest_port=${BENCH_USERS_INGEST_PORT:-18186}
dir=${WA_BENCH_DIR:-/tmp}/users
rm -rf "$dir"
mkdir -p "$dir"
stamp=$(date +%s%N | cut -c1-13)
prefix="bus$stamp."
mongo_uri="${WA_MONGO_URI%/*}/benchusers$stamp"
url=http://127.0.0.1:$port
trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"' EXIT

# start_users LOG [VAR=value...]: wa-users on this run's prefix, database and group
start_users() {
    local log=$1
    shift
    wa_daemon_start "$log" env WA_LISTEN=127.0.0.1:$port WA_TOPIC_PREFIX=$prefix \
        WA_MONGO_URI="$mongo_uri" WA_LOG_LEVEL=warn WA_USERS_GROUP="bench$stamp" "$@" \
        "$WA_BIN_DIR/wa-users"
    users_pid=$WA_DAEMON_PID
    wa_readyz_wait "$url" 60 "$users_pid" "$log"
}

# events_done: events whose side effects are all acknowledged: wa_users_events_total of the
# outcomes applied, no_change and invalid ("consumed" counts events fetched and queued)
events_done() {
    { curl -fsS "$url/metrics" 2>/dev/null || true; } |
        awk '/^wa_users_events_total\{outcome="(applied|no_change|invalid)"\}/ {n += $2}
             END {print n + 0}'
}

start_users "$dir/wa-users-1.log"

# 1. import (the reads need it)
if [[ "$parts" == *" import "* || "$parts" == *" reads "* ]]; then
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"id\":\"+1555200%04d\",\"name\":\"Bench %d\",\"tags\":[\"bench\"],\"priority\":\"low\",\"language\":\"en-US\"}\n", i, i }' \
    >"$dir/contacts.ndjson"
t0=$(date +%s.%N)
curl -fsS -X POST --data-binary "@$dir/contacts.ndjson" -H 'Content-Type: application/x-ndjson' \
    --max-time 600 "$url/v1/contacts/import" >"$dir/import.json"
t1=$(date +%s.%N)
python3 - "$dir/import.json" "$t0" "$t1" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); s = float(sys.argv[3]) - float(sys.argv[2])
print("import:            %d lines in %.2f s: %.0f lines/s (created %d, failed %d)"
      % (a["received"], s, a["received"] / s, a["created"], a["failed"]))
PY
fi

# 2. reads
if [[ "$parts" == *" reads "* ]]; then
read_run() { # name count path
    local name=$1 count=$2 path=$3 out
    out=$("$WA_BIN_DIR/wa-loadgen" -c 32 -d "$seconds" -g "$count" -p "$path" "127.0.0.1:$port")
    printf 'reads %-16s %s\n' "$name:" "$(echo "$out" | head -1)"
    echo "$out" | tail -n +2 | grep -v 'HTTP 200' || true
}
if [ "$n" -gt 10000 ]; then
    n=10000 # the path pattern holds four digits
fi
# the warm-up: every contact once (8 at a time), each a cache miss
t0=$(date +%s.%N)
curl -fsS --no-progress-meter --parallel --parallel-max 8 \
    "$url/v1/contacts/+1555200[0000-$(printf %04d $((n - 1)))]" >/dev/null
t1=$(date +%s.%N)
awk -v n="$n" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "reads warm-up:     %d contacts read once (misses) in %.2f s: %.0f reads/s\n", n, t1 - t0, n / (t1 - t0) }'
read_run "cached spread" "$n" '/v1/contacts/+1555200{n}'
read_run "cached hot" 1 /v1/contacts/+15552000000
if [ -n "$uncached_env" ]; then
    wa_daemons_stop 10 "$users_pid"
    # shellcheck disable=SC2086
    start_users "$dir/wa-users-uncached.log" $uncached_env
    read_run "uncached spread" "$n" '/v1/contacts/+1555200{n}'
    read_run "uncached hot" 1 /v1/contacts/+15552000000
fi
fi
wa_daemons_stop 10 "$users_pid"
[[ "$parts" == *" events "* ]] || exit 0

# 3. event consumption: the backlog first, wa-users after
wa_daemon_start "$dir/wa-ingest.log" env WA_LISTEN=127.0.0.1:$ingest_port WA_TOPIC_PREFIX=$prefix \
    WA_SPOOL_DIR="$dir/spool" WA_LOG_LEVEL=warn WA_DEDUP_TTL=10m WA_APP_SECRET=bench-secret \
    "$WA_BIN_DIR/wa-ingest"
ingest_pid=$WA_DAEMON_PID
wa_readyz_wait "http://127.0.0.1:$ingest_port" 30 "$ingest_pid" "$dir/wa-ingest.log"
"$WA_BIN_DIR/wa-ingest-loadgen" -s bench-secret -c 32 -r 0 -d "$backlog" -w 0 \
    "127.0.0.1:$ingest_port" >"$dir/ingest-loadgen.txt" || true
wa_daemons_stop 10 "$ingest_pid"
mongo_uri="${WA_MONGO_URI%/*}/benchusersev$stamp" # empty: FerretDB's per-write cost grows with it
first=0 first_t=$(date +%s.%N) last=0 last_t=0 still=0 # timed from the daemon's start
start_users "$dir/wa-users-2.log"
deadline=$((SECONDS + ${BENCH_USERS_WINDOW:-20})) # measured over at most this window
while ((SECONDS < deadline)); do
    c=$(events_done)
    now=$(date +%s.%N)
    if [ "$c" -gt "$last" ]; then
        last=$c last_t=$now still=0
    elif [ "$last" -gt 0 ]; then
        still=$((still + 1))
        [ "$still" -ge 50 ] && break # nothing new for 5 s: the backlog is done
    fi
    sleep 0.1
done
python3 - "$first" "$first_t" "$last" "$last_t" <<'PY'
import sys
first, t0, last, t1 = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if last <= first or t1 <= t0:
    print("events:            none consumed (see the logs)"); sys.exit(1)
print("events consumed:   %d in %.2f s: %.0f events/s (backlog of inbound messages and "
      "statuses; %d consumed in all)" % (last - first, t1 - t0, (last - first) / (t1 - t0), last))
PY
