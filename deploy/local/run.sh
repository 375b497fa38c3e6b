#!/usr/bin/env bash
# run.sh: what `make run` does: install what is missing, build (build/run), start Kafka, Redis
# and FerretDB (infra.sh), then wa-cloudsim and the six daemons with the sandbox defaults, then
# Prometheus (Debian's, on WA_PROMETHEUS_LISTEN, default 127.0.0.1:9090) scraping every daemon
# with deploy/prometheus/ (data in var/run/prometheus) and Jaeger (jaeger.sh; UI 16686, the
# daemons' WA_OTLP_ENDPOINT unless one is set), print where each listens, supervise them
# (one that exits is logged and restarted with back-off, as Kubernetes would), and stop
# everything on Ctrl-C (daemons first, SIGTERM then SIGKILL after 10 s, then the infrastructure).
#
# Every default below yields to a value already set in the caller's environment.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=deploy/local/lib.sh
source "$root/deploy/local/lib.sh"
# started in the background by a script: SIGINT restored, so that it stops everything
wa_sigint_restore "$root/deploy/local/run.sh" "$@"

: "${WA_SANDBOX_PHONE_NUMBER_ID:=100000000000001}"
: "${WA_SANDBOX_DISPLAY_NUMBER:=+15550000001}"
: "${WA_SANDBOX_WABA_ID:=200000000000001}"
# sandbox mode: the daemons accept the public sandbox secrets below (refused otherwise)
: "${WA_SANDBOX:=1}"
: "${WA_ACCESS_TOKEN:=sandbox-token}"
: "${WA_APP_SECRET:=sandbox-secret}"
: "${WA_VERIFY_TOKEN:=sandbox-verify}"
[ -n "${WA_OPTOUT_KEY_FILE:-}" ] || : "${WA_OPTOUT_KEY:=sandbox-optout-key}"
: "${WA_GRAPH_URL:=http://127.0.0.1:8090/v21.0}"
: "${WA_WEBHOOK_URL:=http://127.0.0.1:8081/webhook}"
: "${WA_ROUTER_RULES:=$root/deploy/local/router-rules.json}"
: "${WA_ANALYTICS_RATECARD:=$root/services/analytics/ratecard.sample.json}"
: "${WA_PROMETHEUS_LISTEN:=127.0.0.1:9090}"
export WA_SANDBOX WA_SANDBOX_PHONE_NUMBER_ID WA_SANDBOX_DISPLAY_NUMBER WA_SANDBOX_WABA_ID WA_ACCESS_TOKEN \
    WA_APP_SECRET WA_VERIFY_TOKEN WA_OPTOUT_KEY WA_GRAPH_URL WA_WEBHOOK_URL WA_ROUTER_RULES \
    WA_ANALYTICS_RATECARD

deploy/local/build.sh run
deploy/local/infra.sh start
# wa-gateway's key pepper: made once, kept in var/run (0600), given as a *_FILE secret
mkdir -p "$root/var/run"
if [ -z "${WA_GATEWAY_KEY_PEPPER:-}" ] && [ -z "${WA_GATEWAY_KEY_PEPPER_FILE:-}" ]; then
    if [ ! -s "$root/var/run/gateway-pepper" ]; then
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
            >"$root/var/run/gateway-pepper")
    fi
    export WA_GATEWAY_KEY_PEPPER_FILE="$root/var/run/gateway-pepper"
fi
set -a
# shellcheck disable=SC1091
. "$root/var/run/env"
set +a

logs="$root/var/run/logs"
mkdir -p "$logs"
declare -A listens=()

stop_all() {
    trap - INT TERM EXIT
    echo "[run] stopping daemons"
    wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"
    deploy/local/infra.sh stop || true
    echo "[run] stopped"
    exit 0
}
trap stop_all INT TERM EXIT

start_daemon() { # name listen
    local name=$1 listen=$2
    wa_supervise_add "$name" "$logs/$name.log" env WA_LISTEN="$listen" "$root/build/run/bin/$name"
    listens[$WA_DAEMON_PID]=$listen
    printf '[run] %-13s http://%s  (log %s)\n' "$name" "$listen" "var/run/logs/$name.log"
}

# Jaeger (UI and API http://127.0.0.1:16686, OTLP/HTTP 4318), built once from the Go module
# proxy (jaeger.sh); the daemons send their spans there. Without it the suite runs untraced.
if [[ -z "${WA_OTLP_ENDPOINT:-}" ]]; then
    if wa_port_open 127.0.0.1 16686 || wa_port_open 127.0.0.1 4318; then
        wa_warn "port 16686 or 4318 is taken ($(wa_port_owner 16686)); Jaeger not started"
    elif deploy/local/jaeger.sh; then
        wa_supervise_add jaeger "$logs/jaeger.log" "$(deploy/local/jaeger.sh --print)"
        printf '[run] %-13s http://127.0.0.1:16686  (OTLP http://127.0.0.1:4318, log %s)\n' \
            jaeger var/run/logs/jaeger.log
        deadline=$((SECONDS + 30))
        until wa_port_open 127.0.0.1 4318; do
            ((SECONDS < deadline)) && wa_alive "$WA_DAEMON_PID" || {
                wa_warn "Jaeger is not listening on 4318; see var/run/logs/jaeger.log"
                break
            }
            sleep 0.2
        done
        export WA_OTLP_ENDPOINT=http://127.0.0.1:4318
    else
        wa_warn "Jaeger could not be built; the suite runs without traces"
    fi
fi

start_daemon wa-cloudsim 127.0.0.1:8090
start_daemon wa-ingest 127.0.0.1:8081
start_daemon wa-users 127.0.0.1:8085
start_daemon wa-analytics 127.0.0.1:8084
start_daemon wa-notify 127.0.0.1:8083
start_daemon wa-router 127.0.0.1:8082
start_daemon wa-gateway 127.0.0.1:8080

# Wait (at most 60 s each) for every /readyz; a daemon that is not ready is reported, the rest
# keep running.
for pid in "${WA_DAEMON_PIDS[@]}"; do
    [[ -n "${listens[$pid]:-}" ]] || continue # Jaeger: not a daemon
    wa_readyz_wait "http://${listens[$pid]}" 60 "$pid" || true
done
# Prometheus: a port already taken (another Prometheus) is reported, the suite runs without it.
prom_host=${WA_PROMETHEUS_LISTEN%:*} prom_port=${WA_PROMETHEUS_LISTEN##*:}
if wa_port_open "$prom_host" "$prom_port"; then
    wa_warn "port $prom_port is taken ($(wa_port_owner "$prom_port")); Prometheus not started"
else
    mkdir -p "$root/var/run/prometheus"
    wa_supervise_add prometheus "$logs/prometheus.log" prometheus \
        --config.file="$root/deploy/prometheus/prometheus.yml" \
        --storage.tsdb.path="$root/var/run/prometheus" --storage.tsdb.retention.time=2d \
        --web.listen-address="$WA_PROMETHEUS_LISTEN"
    printf '[run] %-13s http://%s  (log %s)\n' prometheus "$WA_PROMETHEUS_LISTEN" \
        var/run/logs/prometheus.log
    deadline=$((SECONDS + 30))
    until curl -fs -o /dev/null "http://$WA_PROMETHEUS_LISTEN/-/ready"; do
        ((SECONDS < deadline)) && wa_alive "$WA_DAEMON_PID" || {
            wa_warn "Prometheus is not ready; see var/run/logs/prometheus.log"
            break
        }
        sleep 0.2
    done
fi
# A sandbox API key (every scope) for the gateway, written once per run to var/run/api-key (0600).
if (umask 077 && "$root/build/run/bin/wa-gateway" keys create --name sandbox --scopes all \
    >"$root/var/run/api-key" 2>>"$logs/wa-gateway-keys.log"); then
    echo "[run] sandbox API key (all scopes) in var/run/api-key:" \
        "curl -H \"Authorization: Bearer \$(cat var/run/api-key)\" http://127.0.0.1:8080/v1/..."
else
    echo "[run] could not create a sandbox API key; see var/run/logs/wa-gateway-keys.log" >&2
fi
echo "[run] suite is up: gateway http://127.0.0.1:8080, webhooks http://127.0.0.1:8081/webhook,"
echo "[run] Cloud API simulator $WA_GRAPH_URL (sandbox number $WA_SANDBOX_DISPLAY_NUMBER," \
     "phone_number_id $WA_SANDBOX_PHONE_NUMBER_ID). Ctrl-C stops everything."
# Supervise until Ctrl-C: a daemon that exits is logged and restarted with back-off (lib.sh).
wa_supervise
