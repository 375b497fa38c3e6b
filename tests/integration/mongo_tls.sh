#!/usr/bin/env bash
# mongo_tls.sh: MongoDB over TLS with libmongoc's URI options (docs/configuration.md): a FerretDB
# started here with only a TLS listener (certificates made here with openssl); libs/mongo's own
# integration test (mongo_ferretdb) and a daemon (wa-analytics, its URI from WA_MONGO_URI_FILE)
# reach it with "tls=true&tlsCAFile=<ca>"; without the CA, or without TLS, they do not.
set -euo pipefail
: "${WA_BIN_DIR:?}" "${WA_MONGO_TEST:?}" "${WA_REPO_ROOT:?}" "${WA_KAFKA_BROKERS:?}"
# shellcheck source=tests/integration/tls_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
for c in openssl curl python3; do
  command -v "$c" >/dev/null || fail "$c not found (deploy/local/deps.sh installs it)"
done
ferretdb=$("$WA_REPO_ROOT/deploy/local/mongo.sh" bin 2>/dev/null) || fail "no FerretDB (deploy/local/mongo.sh install)"

tls_setup mongo-tls
tls_certs server

port=$(free_port)
mkdir -p "$dir/data"
"$ferretdb" --handler=sqlite --sqlite-url="file:$dir/data/" --listen-addr= \
  --listen-tls="127.0.0.1:$port" --listen-tls-cert-file="$dir/server.crt" \
  --listen-tls-key-file="$dir/server.key" --debug-addr=- --telemetry=disable \
  --state-dir="$dir" --log-level=warn >"$dir/ferretdb.log" 2>&1 &
pids+=($!)
wait_port "$port" || fail "FerretDB --listen-tls did not listen: $(tail -5 "$dir/ferretdb.log")"
tls_uri="mongodb://127.0.0.1:$port/wabridge?tls=true&tlsCAFile=$dir/ca.pem"

# libs/mongo: wa-infra's ping and the library's whole integration test over TLS
"$WA_BIN_DIR/wa-infra" mongo-ping "$tls_uri" 10000 || fail "mongo-ping over TLS with the CA"
WA_MONGO_URI=$tls_uri "$WA_MONGO_TEST" >"$dir/mongo_test.log" 2>&1 || {
  cat "$dir/mongo_test.log" >&2
  fail "mongo_ferretdb over TLS"
}
# no CA (the system's do not sign it), no TLS: refused
if "$WA_BIN_DIR/wa-infra" mongo-ping "mongodb://127.0.0.1:$port/wabridge?tls=true" 2000 2>/dev/null; then
  fail "mongo-ping trusted a certificate without its CA"
fi
if "$WA_BIN_DIR/wa-infra" mongo-ping "mongodb://127.0.0.1:$port/wabridge" 2000 2>/dev/null; then
  fail "mongo-ping without TLS reached the TLS listener"
fi

# a daemon with the URI (a secret) from a file
printf '%s\n' "$tls_uri" >"$dir/mongo-uri"
hport=$(free_port)
env -u WA_MONGO_URI WA_LISTEN=127.0.0.1:$hport WA_SANDBOX=1 WA_MONGO_URI_FILE="$dir/mongo-uri" \
  WA_TOPIC_PREFIX="t$$-$RANDOM." WA_LOG_LEVEL=warn \
  "$WA_BIN_DIR/wa-analytics" >"$dir/analytics.log" 2>&1 &
daemon=$!
pids+=("$daemon")
body=
for _ in $(seq 300); do
  body=$(curl -s --max-time 2 "http://127.0.0.1:$hport/readyz" || true)
  [[ "$body" == *'"mongodb":"up"'* ]] && break
  sleep 0.1
done
[[ "$body" == *'"mongodb":"up"'* ]] || fail "wa-analytics over TLS: /readyz $body ($(tail -3 "$dir/analytics.log"))"
kill -TERM "$daemon"
wait "$daemon" || fail "wa-analytics exited $? after SIGTERM"
echo "mongo_tls: wa-infra, mongo_ferretdb and wa-analytics reached a TLS-only FerretDB with the CA; without it or without TLS, refused"
