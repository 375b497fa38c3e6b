#!/usr/bin/env bash
# infra_tool.sh: wa-infra (tools/infra, used by deploy/local's kafka.sh and mongo.sh) against
# the real Kafka and FerretDB of make test: probes succeed on the servers and fail on a closed
# port, kafka-topics creates exactly libs/contract's topics, which kafka-list then shows, and
# kafka-delete removes the named ones and no other.
set -euo pipefail
bin=${WA_BIN_DIR:?}/wa-infra
: "${WA_KAFKA_BROKERS:?}" "${WA_MONGO_URI:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

mapfile -t topics < <("$bin" contract-topics)
((${#topics[@]} >= 10)) || fail "contract-topics printed ${#topics[@]} topics"
printf '%s\n' "${topics[@]}" | grep -qx inbound.message || fail "inbound.message not in the contract"

"$bin" kafka-ping "$WA_KAFKA_BROKERS" 5000 || fail "kafka-ping on $WA_KAFKA_BROKERS"
if "$bin" kafka-ping 127.0.0.1:1 500 2>/dev/null; then fail "kafka-ping on a closed port succeeded"; fi

prefix="t$$-$RANDOM."
out=$("$bin" kafka-topics "$WA_KAFKA_BROKERS" "$prefix" 2 30000) || fail "kafka-topics: $out"
listing=$("$bin" kafka-list "$WA_KAFKA_BROKERS" 5000) || fail "kafka-list"
for t in "${topics[@]}"; do
  grep -qx "$prefix$t 2" <<<"$listing" || fail "$prefix$t with 2 partitions not listed"
done
# a second run keeps the existing topics
"$bin" kafka-topics "$WA_KAFKA_BROKERS" "$prefix" 2 30000 >/dev/null || fail "kafka-topics again"

# kafka-delete removes exactly the named topics; a name that does not exist is no error
doomed=("$prefix${topics[0]}" "$prefix${topics[1]}" "${prefix}never-made")
"$bin" kafka-delete "$WA_KAFKA_BROKERS" "${doomed[@]}" >/dev/null || fail "kafka-delete"
for _ in $(seq 1 50); do
  listing=$("$bin" kafka-list "$WA_KAFKA_BROKERS" 5000) || fail "kafka-list after kafka-delete"
  grep -qx "$prefix${topics[0]} 2" <<<"$listing" || grep -qx "$prefix${topics[1]} 2" <<<"$listing" || break
  sleep 0.2
done
if grep -qx "$prefix${topics[0]} 2" <<<"$listing"; then fail "$prefix${topics[0]} still listed after kafka-delete"; fi
if grep -qx "$prefix${topics[1]} 2" <<<"$listing"; then fail "$prefix${topics[1]} still listed after kafka-delete"; fi
grep -qx "$prefix${topics[2]} 2" <<<"$listing" || fail "kafka-delete took $prefix${topics[2]} too"
rc=0
"$bin" kafka-delete "$WA_KAFKA_BROKERS" 2>/dev/null || rc=$?
((rc == 2)) || fail "kafka-delete without a topic exited $rc, not 2"

# the same over the SASL_SSL listener (test profile), settings from the daemons' WA_KAFKA_*
# variables with the password from a file, as the Kubernetes topics Job runs it
if [[ -n "${WA_TEST_KAFKA_SASL_SSL_BROKERS:-}" ]]; then
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$WA_TEST_KAFKA_SASL_PASSWORD" >"$pwfile"
  out=$(WA_KAFKA_SECURITY_PROTOCOL=SASL_SSL WA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
    WA_KAFKA_SASL_USERNAME="$WA_TEST_KAFKA_SASL_USERNAME" WA_KAFKA_SASL_PASSWORD_FILE="$pwfile" \
    WA_KAFKA_SSL_CA_PATH="$WA_TEST_KAFKA_CA_PATH" \
    "$bin" kafka-topics "$WA_TEST_KAFKA_SASL_SSL_BROKERS" "${prefix}tls." 1 30000 2>&1) ||
    fail "kafka-topics over SASL_SSL: $out"
  grep -qx "${prefix}tls.inbound.message 1" < <("$bin" kafka-list "$WA_KAFKA_BROKERS" 5000) ||
    fail "topics made over SASL_SSL not seen over PLAINTEXT"
  if out=$(WA_KAFKA_SECURITY_PROTOCOL=SASL_SSL WA_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
    WA_KAFKA_SASL_USERNAME="$WA_TEST_KAFKA_SASL_USERNAME" WA_KAFKA_SASL_PASSWORD=wrong-pw-x \
    WA_KAFKA_SSL_CA_PATH="$WA_TEST_KAFKA_CA_PATH" \
    "$bin" kafka-ping "$WA_TEST_KAFKA_SASL_SSL_BROKERS" 3000 2>&1); then
    fail "kafka-ping over SASL_SSL with a wrong password succeeded"
  fi
  grep -q "SASL authentication error" <<<"$out" || fail "wrong password, unclear message: $out"
  if grep -q wrong-pw-x <<<"$out"; then fail "the password was printed: $out"; fi
else
  echo "infra_tool: no SASL_SSL listener (WA_TEST_KAFKA_SASL_SSL_BROKERS unset): its checks skipped"
fi

"$bin" mongo-ping "$WA_MONGO_URI" 5000 || fail "mongo-ping on $WA_MONGO_URI"
if "$bin" mongo-ping mongodb://127.0.0.1:1/ 500 2>/dev/null; then fail "mongo-ping on a closed port succeeded"; fi

rc=0
"$bin" kafka-topics 2>/dev/null || rc=$?
((rc == 2)) || fail "usage error exited $rc, not 2"
echo "wa-infra: ${#topics[@]} contract topics created and listed; probes pass and fail as they should"
