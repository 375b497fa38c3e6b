#!/usr/bin/env bash
# gateway_openapi.sh: wa-gateway checked against its own OpenAPI 3.1 document by schemathesis
# (deploy/local/api-tools.sh installs it once): wa-gateway with wa-users, wa-analytics and
# wa-cloudsim behind it, on the suite's Kafka, Redis and FerretDB with a unique prefix and
# database, an API key with every scope. Every operation is exercised (examples, coverage,
# fuzzing, stateful links) with every check except positive_data_acceptance (a body valid
# by the schema may still break a Cloud API rule: a text body without "body" is
# schema-valid JSON and rightly a 422) and revokeKey (it would revoke the key the run uses;
# the integration test covers it). Any failure fails the test; the report is in
# $WA_TEST_OUTPUT (default /tmp)/gateway-openapi.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${WA_BIN_DIR:?}" "${WA_KAFKA_BROKERS:?}" "${WA_REDIS_URL:?}" "${WA_MONGO_URI:?}"
# shellcheck source=deploy/local/lib.sh
source "$root/deploy/local/lib.sh"
"$root/deploy/local/api-tools.sh"
eval "$("$root/deploy/local/api-tools.sh" --print)"
out=${WA_TEST_OUTPUT:-/tmp}
mkdir -p "$out"
report=$out/gateway-openapi.txt
dir=$(mktemp -d /tmp/wa-gateway-openapi.XXXXXX)
prefix="toa$$x$RANDOM."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw=$(free_port) us=$(free_port) an=$(free_port) sim=$(free_port)
export WA_TOPIC_PREFIX=$prefix WA_SANDBOX=1 WA_LOG_LEVEL=warn
export WA_MONGO_URI=${WA_MONGO_URI%/*}/openapi_$$ WA_GATEWAY_KEY_PEPPER=openapi-pepper
trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"; rm -rf "$dir"' EXIT

"$WA_BIN_DIR/wa-infra" kafka-topics "$WA_KAFKA_BROKERS" "$prefix" 2 30000 >/dev/null
wa_daemon_start "$dir/cloudsim.log" env WA_LISTEN=127.0.0.1:$sim WA_WEBHOOK_URL= \
    "$WA_BIN_DIR/wa-cloudsim"
wa_daemon_start "$dir/users.log" env WA_LISTEN=127.0.0.1:$us "$WA_BIN_DIR/wa-users"
wa_daemon_start "$dir/analytics.log" env WA_LISTEN=127.0.0.1:$an \
    WA_ANALYTICS_RATECARD="$root/tests/data/analytics/ratecard.json" "$WA_BIN_DIR/wa-analytics"
key=$("$WA_BIN_DIR/wa-gateway" keys create --name openapi --scopes all --rate 100000000 \
    --burst 100000000 2>>"$dir/keys.log")
wa_daemon_start "$dir/gateway.log" env WA_LISTEN=127.0.0.1:$gw \
    WA_GATEWAY_USERS_URL=http://127.0.0.1:$us WA_GATEWAY_ANALYTICS_URL=http://127.0.0.1:$an \
    WA_GRAPH_URL=http://127.0.0.1:$sim/v21.0 \
    WA_GATEWAY_HEALTH_TARGETS="wa-users=http://127.0.0.1:$us,wa-analytics=http://127.0.0.1:$an" \
    WA_GATEWAY_IP_RATE=100000000 "$WA_BIN_DIR/wa-gateway"
for p in $sim $us $an $gw; do
    wa_readyz_wait "http://127.0.0.1:$p" 60 || { tail -n 20 "$dir"/*.log >&2; exit 1; }
done

rc=0
"$SCHEMATHESIS" run "http://127.0.0.1:$gw/v1/openapi.json" \
    -H "Authorization: Bearer $key" --checks all --exclude-checks positive_data_acceptance \
    --exclude-operation-id revokeKey --max-examples "${WA_OPENAPI_EXAMPLES:-25}" \
    --seed 1 --workers 1 --request-timeout 20 >"$report" 2>&1 || rc=$?
tail -n 25 "$report"
if ((rc != 0)); then
    echo "FAIL: schemathesis found failures (report $report; logs $dir kept)" >&2
    trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"' EXIT
    exit 1
fi
echo "wa-gateway conforms to its OpenAPI document (report $report)"
