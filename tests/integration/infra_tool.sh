#!/usr/bin/env bash
# infra_tool.sh: wa-infra (tools/infra, used by deploy/local's kafka.sh and mongo.sh) against
# the real Kafka and FerretDB of make test: probes succeed on the servers and fail on a closed
# port, and kafka-topics creates exactly libs/contract's topics, which kafka-list then shows.
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

"$bin" mongo-ping "$WA_MONGO_URI" 5000 || fail "mongo-ping on $WA_MONGO_URI"
if "$bin" mongo-ping mongodb://127.0.0.1:1/ 500 2>/dev/null; then fail "mongo-ping on a closed port succeeded"; fi

rc=0
"$bin" kafka-topics 2>/dev/null || rc=$?
((rc == 2)) || fail "usage error exited $rc, not 2"
echo "wa-infra: ${#topics[@]} contract topics created and listed; probes pass and fail as they should"
