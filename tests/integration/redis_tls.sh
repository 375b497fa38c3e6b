#!/usr/bin/env bash
# redis_tls.sh: Redis over TLS the supported way (docs/operations.md, "Redis over TLS"): a
# redis-server with only a TLS port, a password and client certificates required (certificates
# made here with openssl), and a stunnel client tunnel on loopback that checks the server's
# certificate and presents the client's. libs/kv's own integration test (kv_redis) and a daemon
# (wa-router, /readyz) reach Redis through the tunnel with a plain redis:// URL; a plain client
# reaching the TLS port directly gets nothing.
set -euo pipefail
: "${WA_BIN_DIR:?}" "${WA_KV_TEST:?}" "${WA_KAFKA_BROKERS:?}"
# shellcheck source=tests/integration/tls_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/tls_lib.sh"
for c in redis-server redis-cli stunnel openssl curl python3; do
  command -v "$c" >/dev/null || fail "$c not found (deploy/local/deps.sh installs it)"
done

tls_setup redis-tls
# certificates: a CA, the server's, the tunnel's client certificate
tls_certs server client

tls_port=$(free_port)
password=tls-test-$RANDOM$RANDOM
redis-server --port 0 --tls-port "$tls_port" --bind 127.0.0.1 \
  --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
  --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients yes --requirepass "$password" \
  --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
wait_port "$tls_port" 10 || fail "redis-server --tls-port did not listen: $(tail -5 "$dir/redis.log")"

tunnel_port=$(free_port)
cat >"$dir/stunnel.conf" <<CONF
foreground = yes
pid =
output = $dir/stunnel.log
[redis]
client = yes
accept = 127.0.0.1:$tunnel_port
connect = 127.0.0.1:$tls_port
CAfile = $dir/ca.pem
verifyChain = yes
checkIP = 127.0.0.1
cert = $dir/client.crt
key = $dir/client.key
sslVersionMin = TLSv1.2
CONF
stunnel "$dir/stunnel.conf" &
pids+=($!)
wait_port "$tunnel_port" || fail "stunnel did not listen: $(tail -5 "$dir/stunnel.log" 2>/dev/null)"
url="redis://:$password@127.0.0.1:$tunnel_port/0"

# the TLS port refuses a plain client; the tunnel answers it
if out=$(timeout 5 redis-cli -p "$tls_port" --no-auth-warning -a "$password" ping 2>&1) &&
  [[ "$out" == PONG ]]; then
  fail "plain redis-cli got PONG from the TLS port"
fi
out=$(timeout 5 redis-cli -p "$tunnel_port" --no-auth-warning -a "$password" ping 2>&1) || true
[[ "$out" == PONG ]] || fail "redis-cli through the tunnel: $out ($(tail -3 "$dir/stunnel.log"))"

# libs/kv: its whole integration test with WA_REDIS_URL through the tunnel
WA_REDIS_URL=$url "$WA_KV_TEST" >"$dir/kv.log" 2>&1 || {
  cat "$dir/kv.log" >&2
  fail "kv_redis through the tunnel"
}

# a daemon: wa-router's /readyz reports Redis up through the tunnel
port=$(free_port)
WA_LISTEN=127.0.0.1:$port WA_SANDBOX=1 WA_REDIS_URL=$url WA_TOPIC_PREFIX="t$$-$RANDOM." \
  WA_LOG_LEVEL=warn "$WA_BIN_DIR/wa-router" >"$dir/router.log" 2>&1 &
router=$!
pids+=("$router")
body=
for _ in $(seq 300); do
  body=$(curl -s --max-time 2 "http://127.0.0.1:$port/readyz" || true)
  [[ "$body" == *'"redis":"up"'* && "$body" == *'"status":"ready"'* ]] && break
  sleep 0.1
done
[[ "$body" == *'"redis":"up"'* ]] || fail "wa-router through the tunnel: /readyz $body ($(tail -3 "$dir/router.log"))"
kill -TERM "$router"
wait "$router" || fail "wa-router exited $? after SIGTERM"
if grep -q "$password" "$dir/router.log"; then fail "the Redis password is in wa-router's log"; fi
echo "redis_tls: kv_redis and wa-router reached a TLS-only Redis (mutual TLS, password) through stunnel"
