#!/usr/bin/env bash
# Local Apache Kafka broker: one KRaft node (broker + controller) on 127.0.0.1, jars resolved
# from Maven Central with deploy/local/kafka/pom.xml into $WA_CACHE_DIR (once per machine).
#   kafka.sh install|start|stop|status|topics|run [--ports test|default]
#   run: the broker in the foreground (the JVM replaces the script: the caller's child, its
#   stdout and stderr, no pid file, no topics), for a caller that owns the process, such as a
#   chaos scenario that kills it with SIGKILL and starts it again on the same data.
# Reads: KAFKA_PORT, KAFKA_CONTROLLER_PORT, WA_TOPIC_PREFIX, WA_INFRA_DIR, WA_INFRA_PROFILE,
#        WA_CACHE_DIR, WA_JAVA (java binary, default Debian's Java 17), KAFKA_HEAP_OPTS,
#        KAFKA_JVM_PERFORMANCE_OPTS (GC options),
#        KAFKA_START_TIMEOUT (default 90 s), WA_TOPIC_PARTITIONS (default 4),
#        KAFKA_SASL_SSL_PORT (a second listener, SASL_SSL; test profile: KAFKA_PORT + 2, default
#        profile: none; empty or 0 turns it off).
# The SASL_SSL listener (for tests of the clients' TLS and SASL settings) sits beside PLAINTEXT,
# which stays the brokers' own listener, so PLAINTEXT clients see no difference. Its CA, broker
# and client certificates (openssl) and the password of the user "wabridge" (PLAIN, SCRAM-SHA-256,
# SCRAM-SHA-512) are made once per data dir in $WA_INFRA_DIR/kafka/tls; `start` writes what a
# client needs to $WA_INFRA_DIR/kafka/sasl_ssl.env (WA_TEST_KAFKA_* names, which daemons ignore).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wa_parse_args "$@"
set -- "${WA_ARGS[@]}"
(($# == 1)) || {
  printf 'usage: %s install|start|stop|status|topics|run [--ports test|default]\n' "$0" >&2
  exit 2
}
wa_apply_profile

KAFKA_VERSION=3.9.1 # keep in step with deploy/local/kafka/pom.xml
KAFKA_POM=$WA_LOCAL_DIR/kafka/pom.xml
KAFKA_HOME=$WA_CACHE_DIR/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_MARKER=$KAFKA_HOME/.resolved
KAFKA_INSTALL_LOG=$KAFKA_HOME/install.log

KAFKA_DIR=$WA_INFRA_DIR/kafka
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_CONF=$KAFKA_DIR/server.properties
KAFKA_LOG4J=$KAFKA_DIR/log4j.properties
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_LOG=$WA_LOG_DIR/kafka.log # written by log4j
KAFKA_OUT=$WA_LOG_DIR/kafka.out # JVM stdout/stderr
KAFKA_ADDR=$WA_HOST:$KAFKA_PORT
KAFKA_PATTERN="kafka.Kafka $KAFKA_CONF"
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
# Latency, not footprint: wa-ingest answers a webhook only after the broker's acknowledgement, so
# every broker pause is a webhook's latency. A fixed, pre-touched 1 GiB heap and G1 with Kafka's
# own settings (20 ms pause goal): on two cores shared with the whole suite, ZGC's concurrent
# cycles cost the end-to-end tail more than G1's short young pauses (GC pauses go to
# $WA_LOG_DIR/kafka-gc.log; the measurements: docs/operations.md, "Broker settings that decide
# webhook latency"). Override for small machines.
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1g -Xms1g -XX:+AlwaysPreTouch}
KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}
WA_TOPIC_PARTITIONS=${WA_TOPIC_PARTITIONS:-4}
if [[ "$WA_INFRA_PROFILE" == test ]]; then
  KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT-$((KAFKA_PORT + 2))}
else
  KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-}
fi
[[ "$KAFKA_SASL_SSL_PORT" == 0 ]] && KAFKA_SASL_SSL_PORT=
[[ -z "$KAFKA_SASL_SSL_PORT" ]] || wa_check_port KAFKA_SASL_SSL_PORT "$KAFKA_SASL_SSL_PORT"
KAFKA_TLS=$KAFKA_DIR/tls
KAFKA_SASL_USER=wabridge
KAFKA_SASL_ENV=$KAFKA_DIR/sasl_ssl.env

# The topics are libs/contract's (WA_CONTRACT_TOPICS): wa-infra creates them.

# ------------------------------------------------------------------ java

find_java() {
  local java arch version
  if [[ -n "${WA_JAVA:-}" ]]; then
    java=$WA_JAVA
  else
    arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
    java=/usr/lib/jvm/java-17-openjdk-$arch/bin/java
    [[ -x "$java" ]] || java=$(command -v java) ||
      wa_die "no java found (WA_JAVA unset, no $java, no java in PATH): run deploy/local/deps.sh"
  fi
  [[ -x "$java" ]] || wa_die "WA_JAVA=$java is not executable"
  version=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  if [[ -z "$version" ]] || ((version < 17)); then
    wa_die "Kafka $KAFKA_VERSION here is run on Java 17+, $java is '${version:-unknown}' (set WA_JAVA)"
  fi
  printf '%s\n' "$java"
}

# ------------------------------------------------------------------ install

pom_sum() {
  sha256sum "$KAFKA_POM" | cut -d' ' -f1
}

kafka_installed() {
  [[ -f "$KAFKA_MARKER" && -d "$KAFKA_LIBS" && "$(cat "$KAFKA_MARKER")" == "$(pom_sum)" ]]
}

kafka_install() {
  kafka_installed && return 0
  wa_lock "$WA_CACHE_DIR/kafka-$KAFKA_VERSION.lock" 900 "the Kafka jar resolution"
  kafka_installed && return 0 # resolved by whoever held the lock
  wa_require_cmd mvn
  mkdir -p "$KAFKA_HOME"
  : >"$KAFKA_INSTALL_LOG"
  wa_log "kafka: resolving Apache Kafka $KAFKA_VERSION from Maven Central (one-time; log $KAFKA_INSTALL_LOG)"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -B -q -f "$KAFKA_POM" dependency:copy-dependencies \
    "-DoutputDirectory=$KAFKA_LIBS.tmp" >>"$KAFKA_INSTALL_LOG" 2>&1; then
    wa_die "mvn dependency:copy-dependencies for $KAFKA_POM failed" "$KAFKA_INSTALL_LOG"
  fi
  [[ -f "$KAFKA_LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    wa_die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing in $KAFKA_LIBS.tmp" "$KAFKA_INSTALL_LOG"
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  pom_sum >"$KAFKA_MARKER"
  wa_log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

# ------------------------------------------------------------------ the SASL_SSL listener

# make_tls: a CA, the broker's certificate (127.0.0.1 and localhost) as a PEM keystore, a client
# certificate with an encrypted key (for mutual TLS tests) and the SASL password; once per data
# dir, all private to the owner.
make_tls() {
  local t=$KAFKA_TLS
  [[ -s "$t/broker.pem" && -s "$t/client.key" && -s "$t/sasl-password" ]] && return 0
  wa_require_cmd openssl
  rm -rf "$t.tmp"
  mkdir -p "$t.tmp"
  chmod 700 "$t.tmp"
  (
    set -e
    cd "$t.tmp"
    openssl rand -hex 16 >sasl-password
    openssl rand -hex 16 >client-key-password
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/CN=wabridge local test CA"
    openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=$WA_HOST"
    printf 'subjectAltName=IP:%s,DNS:localhost\n' "$WA_HOST" >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.crt
    cat broker.key broker.crt >broker.pem # Kafka's PEM keystore: PKCS#8 key, then the chain
    openssl req -newkey rsa:2048 -keyout client.key -out client.csr -subj "/CN=wabridge-client" \
      -passout file:client-key-password
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -out client.crt
    rm -f ./*.csr ./*.ext ca.srl
  ) >>"$KAFKA_OUT" 2>&1 || wa_die "kafka: generating the SASL_SSL certificates failed" "$KAFKA_OUT"
  rm -rf "$t"
  mv "$t.tmp" "$t"
  wa_log "kafka: SASL_SSL certificates and password in $t"
}

sasl_ssl_config() {
  local pw
  pw=$(cat "$KAFKA_TLS/sasl-password")
  cat <<EOF
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$pw";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_TLS/broker.pem
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$KAFKA_TLS/ca.pem
# a client certificate is checked when one is sent (WA_KAFKA_SSL_CERT_PATH), not required
listener.name.sasl_ssl.ssl.client.auth=requested
EOF
}

# scram_args: the StorageTool options that create the SCRAM credentials while formatting.
scram_args() {
  local pw m
  SCRAM_ARGS=()
  [[ -n "$KAFKA_SASL_SSL_PORT" ]] || return 0
  pw=$(cat "$KAFKA_TLS/sasl-password")
  for m in SCRAM-SHA-256 SCRAM-SHA-512; do
    SCRAM_ARGS+=(--add-scram "$m=[name=$KAFKA_SASL_USER,password=$pw]")
  done
}

# ensure_scram JAVA: a data dir formatted before the listener existed gets the SCRAM users
# through the admin API (once: a marker remembers it).
ensure_scram() {
  local java=$1 pw m
  [[ -n "$KAFKA_SASL_SSL_PORT" && ! -f "$KAFKA_TLS/.scram-added" ]] || return 0
  pw=$(cat "$KAFKA_TLS/sasl-password")
  for m in SCRAM-SHA-256 SCRAM-SHA-512; do
    "$java" "${JVM_TOOL_ARGS[@]}" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_ADDR" \
      --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
      --add-config "$m=[password=$pw]" </dev/null >>"$KAFKA_OUT" 2>&1 ||
      wa_die "kafka: adding the SCRAM user $KAFKA_SASL_USER ($m) failed" "$KAFKA_OUT"
  done
  : >"$KAFKA_TLS/.scram-added"
}

# write_sasl_env: what a client of the SASL_SSL listener needs (or nothing when it is off or the
# running broker, reused, was started without it).
write_sasl_env() {
  rm -f "$KAFKA_SASL_ENV"
  [[ -n "$KAFKA_SASL_SSL_PORT" ]] || return 0
  if ! wa_port_open "$WA_HOST" "$KAFKA_SASL_SSL_PORT"; then
    wa_warn "kafka: nothing listens on the SASL_SSL port $KAFKA_SASL_SSL_PORT (a broker started without it?); its tests will be skipped"
    return 0
  fi
  cat >"$KAFKA_SASL_ENV.tmp" <<EOF
WA_TEST_KAFKA_SASL_SSL_BROKERS=$WA_HOST:$KAFKA_SASL_SSL_PORT
WA_TEST_KAFKA_SASL_USERNAME=$KAFKA_SASL_USER
WA_TEST_KAFKA_SASL_PASSWORD=$(cat "$KAFKA_TLS/sasl-password")
WA_TEST_KAFKA_CA_PATH=$KAFKA_TLS/ca.pem
WA_TEST_KAFKA_CLIENT_CERT_PATH=$KAFKA_TLS/client.crt
WA_TEST_KAFKA_CLIENT_KEY_PATH=$KAFKA_TLS/client.key
WA_TEST_KAFKA_CLIENT_KEY_PASSWORD=$(cat "$KAFKA_TLS/client-key-password")
EOF
  chmod 600 "$KAFKA_SASL_ENV.tmp"
  mv "$KAFKA_SASL_ENV.tmp" "$KAFKA_SASL_ENV"
}

# ------------------------------------------------------------------ configuration

write_config() {
  local listeners advertised map
  listeners=PLAINTEXT://$WA_HOST:$KAFKA_PORT,CONTROLLER://$WA_HOST:$KAFKA_CONTROLLER_PORT
  advertised=PLAINTEXT://$WA_HOST:$KAFKA_PORT
  map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    listeners+=,SASL_SSL://$WA_HOST:$KAFKA_SASL_SSL_PORT
    advertised+=,SASL_SSL://$WA_HOST:$KAFKA_SASL_SSL_PORT
    map+=,SASL_SSL:SASL_SSL
  fi
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  (
    umask 077 # the file holds the SASL password when the listener is on
    cat >"$KAFKA_CONF.tmp" <<EOF
# generated by deploy/local/kafka.sh; rewritten on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$WA_HOST:$KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$map
log.dirs=$KAFKA_DATA
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
# 1 GiB segments (Kafka's default): a roll schedules an fsync of the old segment, which shows in
# wa-ingest's tail latency (services/ingest/README.md, "Performance notes")
log.segment.bytes=1073741824
EOF
    if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
      sasl_ssl_config >>"$KAFKA_CONF.tmp"
    fi
  )
  mv "$KAFKA_CONF.tmp" "$KAFKA_CONF"
  cat >"$KAFKA_LOG4J.tmp" <<'EOF'
# generated by deploy/local/kafka.sh
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/kafka.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
  mv "$KAFKA_LOG4J.tmp" "$KAFKA_LOG4J"
}

jvm_args() {
  # shellcheck disable=SC2206 # the *_OPTS are lists of options, split on purpose
  JVM_ARGS=(
    $KAFKA_HEAP_OPTS
    $KAFKA_JVM_PERFORMANCE_OPTS -XX:+ExitOnOutOfMemoryError
    "-Xlog:gc:file=$WA_LOG_DIR/kafka-gc.log:time,uptime:filecount=2,filesize=10m"
    -Djava.awt.headless=true
    "-Dkafka.logs.dir=$WA_LOG_DIR"
    "-Dlog4j.configuration=file:$KAFKA_LOG4J"
    -cp "$KAFKA_LIBS/*"
  )
  # a command-line tool beside the broker: small heap, no GC log, the broker's log4j setup
  JVM_TOOL_ARGS=(-Xmx256m -XX:+UseSerialGC -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$KAFKA_LOG4J" "-Dkafka.logs.dir=$WA_LOG_DIR" -cp "$KAFKA_LIBS/*")
}

format_storage() {
  local java=$1 cluster_id
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  if [[ -s "$KAFKA_DIR/cluster.id" ]]; then
    cluster_id=$(cat "$KAFKA_DIR/cluster.id")
  else
    wa_require_cmd python3
    # same shape as Kafka's Uuid.randomUuid(): 16 random bytes, url-safe base64, no padding,
    # never starting with '-'
    cluster_id=$(python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')
    printf '%s\n' "$cluster_id" >"$KAFKA_DIR/cluster.id"
  fi
  wa_log "kafka: formatting $KAFKA_DATA (cluster id $cluster_id)"
  scram_args
  if ! "$java" "${JVM_ARGS[@]}" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$KAFKA_CONF" --ignore-formatted "${SCRAM_ARGS[@]}" \
    </dev/null >>"$KAFKA_OUT" 2>&1; then
    wa_die "kafka.tools.StorageTool format failed for $KAFKA_DATA" "$KAFKA_OUT"
  fi
  if ((${#SCRAM_ARGS[@]})); then
    : >"$KAFKA_TLS/.scram-added"
  fi
}

# ------------------------------------------------------------------ commands

kafka_ping() {
  wa_port_open "$WA_HOST" "$KAFKA_PORT" && wa_infra kafka-ping "$KAFKA_ADDR" 1000
}

create_topics() {
  local deadline=$1 left out
  left=$((deadline - SECONDS))
  ((left > 5)) || left=5
  if ! out=$(wa_infra kafka-topics "$KAFKA_ADDR" "$WA_TOPIC_PREFIX" "$WA_TOPIC_PARTITIONS" \
    "$((left * 1000))" 2>&1); then
    printf '%s\n' "$out" >>"$KAFKA_OUT"
    wa_die "kafka: creating topics on $KAFKA_ADDR failed: $out" "$KAFKA_LOG"
  fi
  wa_log "kafka: $out"
}

kafka_start() {
  local java deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  kafka_install
  wa_infra_ensure
  wa_lock "$KAFKA_DIR/.lock" 120 "kafka start/stop"
  if wa_reuse_running kafka "$KAFKA_PID" "$KAFKA_PATTERN" "$KAFKA_OUT:$KAFKA_LOG" \
    "$KAFKA_START_TIMEOUT" "$KAFKA_PORT" kafka_ping; then
    create_topics "$deadline"
    write_sasl_env
    return 0
  fi
  wa_ensure_port_free "kafka controller" "$KAFKA_CONTROLLER_PORT"
  if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
    wa_ensure_port_free "kafka SASL_SSL" "$KAFKA_SASL_SSL_PORT"
    make_tls
  fi
  java=$(find_java)
  write_config
  jvm_args
  : >>"$KAFKA_OUT"
  format_storage "$java"
  wa_spawn "$KAFKA_PID" "$KAFKA_OUT" "$java" "${JVM_ARGS[@]}" kafka.Kafka "$KAFKA_CONF"
  wa_wait_ready kafka "$KAFKA_START_TIMEOUT" "$KAFKA_PID" "$KAFKA_PATTERN" "$KAFKA_OUT:$KAFKA_LOG" kafka_ping
  create_topics "$deadline"
  ensure_scram "$java"
  write_sasl_env
  wa_log "kafka: $KAFKA_VERSION (KRaft) ready on $KAFKA_ADDR${KAFKA_SASL_SSL_PORT:+ (SASL_SSL on $WA_HOST:$KAFKA_SASL_SSL_PORT)}, controller $WA_HOST:$KAFKA_CONTROLLER_PORT (pid $(cat "$KAFKA_PID"), log $KAFKA_LOG)"
}

kafka_run() {
  local java
  KAFKA_SASL_SSL_PORT= # the chaos scenarios' brokers: PLAINTEXT only
  kafka_install
  wa_ensure_port_free kafka "$KAFKA_PORT"
  wa_ensure_port_free "kafka controller" "$KAFKA_CONTROLLER_PORT"
  java=$(find_java)
  write_config
  jvm_args
  format_storage "$java"
  exec "$java" "${JVM_ARGS[@]}" kafka.Kafka "$KAFKA_CONF"
}

kafka_stop() {
  wa_lock "$KAFKA_DIR/.lock" 120 "kafka start/stop"
  wa_stop kafka "$KAFKA_PID" "$KAFKA_PATTERN" 20
}

kafka_topics() {
  wa_pid_running "$KAFKA_PID" "$KAFKA_PATTERN" >/dev/null ||
    wa_die "kafka is not running ($KAFKA_PID); start it with deploy/local/kafka.sh start"
  wa_infra_ensure
  wa_infra kafka-list "$KAFKA_ADDR"
}

case "$1" in
  install) kafka_install ;;
  start) kafka_start ;;
  stop) kafka_stop ;;
  status) wa_status kafka "$KAFKA_PID" "$KAFKA_PATTERN" "$KAFKA_ADDR" ;;
  topics) kafka_topics ;;
  run) kafka_run ;;
  *) wa_usage_exit "$0" ;;
esac
