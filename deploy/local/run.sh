#!/usr/bin/env bash
# run.sh: what `make run` does: install what is missing, build (build/run), start Kafka, Redis
# and FerretDB (infra.sh), then wa-cloudsim and the six daemons with the sandbox defaults, print
# where each listens, and stop everything on Ctrl-C (daemons first, SIGTERM then SIGKILL after
# 10 s, then the infrastructure).
#
# Every default below yields to a value already set in the caller's environment.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

: "${WA_SANDBOX_PHONE_NUMBER_ID:=100000000000001}"
: "${WA_SANDBOX_DISPLAY_NUMBER:=+15550000001}"
: "${WA_SANDBOX_WABA_ID:=200000000000001}"
: "${WA_ACCESS_TOKEN:=sandbox-token}"
: "${WA_APP_SECRET:=sandbox-secret}"
: "${WA_VERIFY_TOKEN:=sandbox-verify}"
: "${WA_GRAPH_URL:=http://127.0.0.1:8090/v21.0}"
: "${WA_WEBHOOK_URL:=http://127.0.0.1:8081/webhook}"
: "${WA_ROUTER_RULES:=$root/deploy/local/router-rules.json}"
export WA_SANDBOX_PHONE_NUMBER_ID WA_SANDBOX_DISPLAY_NUMBER WA_SANDBOX_WABA_ID WA_ACCESS_TOKEN \
    WA_APP_SECRET WA_VERIFY_TOKEN WA_GRAPH_URL WA_WEBHOOK_URL WA_ROUTER_RULES

deploy/local/build.sh run
deploy/local/infra.sh start
set -a
# shellcheck disable=SC1091
. "$root/var/run/env"
set +a

logs="$root/var/run/logs"
mkdir -p "$logs"
pids=()
names=()

stop_all() {
    trap - INT TERM EXIT
    echo "[run] stopping daemons"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    deploy/local/infra.sh stop || true
    echo "[run] stopped"
}
trap stop_all INT TERM EXIT

start_daemon() { # name listen
    local name=$1 listen=$2
    WA_LISTEN=$listen "$root/build/run/bin/$name" >>"$logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
    printf '[run] %-13s http://%s  (log %s)\n' "$name" "$listen" "var/run/logs/$name.log"
}

start_daemon wa-cloudsim 127.0.0.1:8090
start_daemon wa-ingest 127.0.0.1:8081
start_daemon wa-users 127.0.0.1:8085
start_daemon wa-analytics 127.0.0.1:8084
start_daemon wa-notify 127.0.0.1:8083
start_daemon wa-router 127.0.0.1:8082
start_daemon wa-gateway 127.0.0.1:8080

# Wait (at most 60 s) for every /readyz.
deadline=$(( $(date +%s) + 60 ))
for port in 8090 8081 8085 8084 8083 8082 8080; do
    until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "[run] 127.0.0.1:$port is not ready after 60 s:" >&2
            curl -sS "http://127.0.0.1:$port/readyz" >&2 || true
            break
        fi
        sleep 0.5
    done
done
echo "[run] suite is up: gateway http://127.0.0.1:8080, webhooks http://127.0.0.1:8081/webhook,"
echo "[run] Cloud API simulator $WA_GRAPH_URL (sandbox number $WA_SANDBOX_DISPLAY_NUMBER," \
     "phone_number_id $WA_SANDBOX_PHONE_NUMBER_ID). Ctrl-C stops everything."
# Wait until a daemon exits or Ctrl-C.
wait -n "${pids[@]}" || true
echo "[run] a daemon exited; see var/run/logs" >&2
