#!/usr/bin/env bash
# Local infrastructure for `make run` and the tests: Redis, MongoDB wire (FerretDB), Kafka.
#   infra.sh start|stop|status|restart [--ports test|default]
#
# Profiles (--ports, or WA_INFRA_PROFILE):
#   default  Kafka 127.0.0.1:9092 (controller 9093), Redis 6379, Mongo 27017, data <repo>/var/run
#   test     Kafka 127.0.0.1:19092 (controller 19093, SASL_SSL 19094), Redis 16379, Mongo 17017, data <repo>/var/test
# KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT, MONGO_PORT, WA_INFRA_DIR, WA_TOPIC_PREFIX and
# WA_CACHE_DIR in the environment override the profile.
#
# `start` writes <data dir>/env with WA_KAFKA_BROKERS, WA_TOPIC_PREFIX, WA_REDIS_URL and
# WA_MONGO_URI (and, test profile, the WA_TEST_KAFKA_* of Kafka's SASL_SSL listener), for
# `set -a; . var/test/env; set +a`.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  printf 'usage: %s start|stop|status|restart [--ports test|default]\n' "$0" >&2
  exit 2
}

wa_parse_args "$@"
set -- "${WA_ARGS[@]}"
(($# == 1)) || usage
wa_apply_profile

COMPONENTS=(redis mongo kafka)
ENV_FILE=$WA_INFRA_DIR/env

# run_parallel ACTION COMPONENT...: runs "<component>.sh ACTION" for each component at once;
# their progress lines go to stderr as they come. Returns non-zero if any failed, after
# naming which.
run_parallel() {
  local action=$1 c failed=()
  shift
  local -A pids=()
  for c in "$@"; do
    "$WA_LOCAL_DIR/$c.sh" "$action" &
    pids[$c]=$!
  done
  for c in "$@"; do
    wait "${pids[$c]}" || failed+=("$c")
  done
  if ((${#failed[@]})); then
    printf '[infra] ERROR: %s %s failed (see the messages above)\n' "$action" "${failed[*]}" >&2
    return 1
  fi
}

write_env_file() {
  cat >"$ENV_FILE.tmp" <<EOF
# written by deploy/local/infra.sh start (profile $WA_INFRA_PROFILE)
WA_KAFKA_BROKERS=$WA_HOST:$KAFKA_PORT
WA_TOPIC_PREFIX=$WA_TOPIC_PREFIX
WA_REDIS_URL=redis://$WA_HOST:$REDIS_PORT/0
WA_MONGO_URI=mongodb://$WA_HOST:$MONGO_PORT/wabridge
EOF
  # the SASL_SSL listener's client settings (kafka.sh), when it runs
  if [[ -f "$WA_INFRA_DIR/kafka/sasl_ssl.env" ]]; then
    cat "$WA_INFRA_DIR/kafka/sasl_ssl.env" >>"$ENV_FILE.tmp"
  fi
  chmod 600 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

summary() {
  printf '[infra] kafka  %s:%s (KRaft controller %s:%s), topics %s*\n' \
    "$WA_HOST" "$KAFKA_PORT" "$WA_HOST" "$KAFKA_CONTROLLER_PORT" "$WA_TOPIC_PREFIX"
  printf '[infra] redis  %s:%s\n' "$WA_HOST" "$REDIS_PORT"
  printf '[infra] mongo  %s:%s (FerretDB, SQLite in %s/mongo/data)\n' "$WA_HOST" "$MONGO_PORT" "$WA_INFRA_DIR"
  printf '[infra] env    %s   logs %s\n' "$ENV_FILE" "$WA_LOG_DIR"
}

infra_start() {
  local t0=$SECONDS
  "$WA_LOCAL_DIR/deps.sh"
  # one-time installs (Maven resolution, FerretDB build) in parallel, then start everything;
  # kafka takes longest, redis and mongo are up within a second
  run_parallel install kafka mongo
  wa_infra_ensure # the probes' tool, built once here rather than by kafka.sh and mongo.sh at once
  run_parallel start "${COMPONENTS[@]}" || {
    wa_log "logs are in $WA_LOG_DIR; stop what did start with: $0 stop --ports $WA_INFRA_PROFILE"
    exit 1
  }
  write_env_file
  wa_log "started (profile $WA_INFRA_PROFILE) in $((SECONDS - t0))s:"
  summary
}

infra_stop() {
  run_parallel stop kafka mongo redis
}

infra_status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    "$WA_LOCAL_DIR/$c.sh" status || rc=3
  done
  return "$rc"
}

case "$1" in
  start) infra_start ;;
  stop) infra_stop ;;
  status) infra_status ;;
  restart)
    infra_stop
    infra_start
    ;;
  *) usage ;;
esac
