# shellcheck shell=bash
# Common helpers for deploy/local/*.sh. Source it, do not run it.
#
# Environment read here (every one optional):
#   WA_INFRA_PROFILE   default | test   (the --ports option of each script sets it too)
#   WA_INFRA_DIR       data + logs root (default <repo>/var/run, or <repo>/var/test for the test profile)
#   WA_CACHE_DIR       downloads and builds shared by every clone (default $HOME/.cache/wabridge)
#   KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT, MONGO_PORT   override the profile's ports
#   WA_TOPIC_PREFIX    topic prefix (default "wa.")

if [[ -n "${WA_LIB_SOURCED:-}" ]]; then
  return 0
fi
WA_LIB_SOURCED=1

WA_LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WA_REPO_ROOT=$(cd "$WA_LOCAL_DIR/../.." && pwd)
: "${HOME:=/root}"
WA_CACHE_DIR=${WA_CACHE_DIR:-$HOME/.cache/wabridge}
WA_HOST=127.0.0.1

# ------------------------------------------------------------------ logging

wa_log() {
  printf '[infra] %s\n' "$*" >&2
}

wa_warn() {
  printf '[infra] WARNING: %s\n' "$*" >&2
}

# wa_die MESSAGE [LOGFILE...]: print the error (and the tail of each LOGFILE, naming it) and
# exit 1. A LOGFILE argument may also be a ':'-separated list.
wa_die() {
  local msg=$1 arg logfile logs=() parts=()
  shift
  for arg in "$@"; do
    IFS=: read -ra parts <<<"$arg"
    logs+=("${parts[@]}")
  done
  printf '[infra] ERROR: %s\n' "$msg" >&2
  for logfile in "${logs[@]}"; do
    if [[ -s "$logfile" ]]; then
      printf '[infra] ---- last 30 lines of %s ----\n' "$logfile" >&2
      tail -n 30 "$logfile" | sed 's/^/[infra] | /' >&2
      printf '[infra] ---- (full log: %s) ----\n' "$logfile" >&2
    else
      printf '[infra] (log %s is empty or missing)\n' "$logfile" >&2
    fi
  done
  exit 1
}

wa_require_cmd() {
  local cmd=$1 hint=${2:-run deploy/local/deps.sh}
  command -v "$cmd" >/dev/null 2>&1 || wa_die "'$cmd' not found in PATH ($hint)"
}

# ------------------------------------------------------------------ profile and parameters

# wa_parse_args "$@": takes --ports PROFILE / --ports=PROFILE out of the arguments, the rest
# lands in the WA_ARGS array. Usage errors name the calling script.
wa_parse_args() {
  WA_ARGS=()
  while (($#)); do
    case "$1" in
      --ports)
        (($# >= 2)) || wa_die "$(basename "$0"): --ports needs a value (test or default)"
        WA_INFRA_PROFILE=$2
        shift 2
        ;;
      --ports=*)
        WA_INFRA_PROFILE=${1#--ports=}
        shift
        ;;
      *)
        WA_ARGS+=("$1")
        shift
        ;;
    esac
  done
  export WA_INFRA_PROFILE
}

wa_check_port() {
  local name=$1 value=$2
  if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
    wa_die "$name='$value' is not a TCP port number (unset it or give a number 1-65535)"
  fi
}

# wa_apply_profile: fills in ports and directories from WA_INFRA_PROFILE; values already
# present in the environment win. Exports everything so child scripts agree.
wa_apply_profile() {
  local kafka controller redis mongo dir
  case "${WA_INFRA_PROFILE:=default}" in
    test)
      kafka=19092 controller=19093 redis=16379 mongo=17017 dir=$WA_REPO_ROOT/var/test
      ;;
    default | run)
      WA_INFRA_PROFILE=default
      kafka=9092 controller=9093 redis=6379 mongo=27017 dir=$WA_REPO_ROOT/var/run
      ;;
    *)
      wa_die "unknown profile '$WA_INFRA_PROFILE' (--ports / WA_INFRA_PROFILE takes: test, default)"
      ;;
  esac
  KAFKA_PORT=${KAFKA_PORT:-$kafka}
  KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$controller}
  REDIS_PORT=${REDIS_PORT:-$redis}
  MONGO_PORT=${MONGO_PORT:-$mongo}
  WA_INFRA_DIR=${WA_INFRA_DIR:-$dir}
  WA_TOPIC_PREFIX=${WA_TOPIC_PREFIX-wa.}
  wa_check_port KAFKA_PORT "$KAFKA_PORT"
  wa_check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
  wa_check_port REDIS_PORT "$REDIS_PORT"
  wa_check_port MONGO_PORT "$MONGO_PORT"
  if [[ "$KAFKA_PORT" == "$KAFKA_CONTROLLER_PORT" ]]; then
    wa_die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both $KAFKA_PORT"
  fi
  mkdir -p "$WA_INFRA_DIR" || wa_die "cannot create WA_INFRA_DIR=$WA_INFRA_DIR"
  WA_INFRA_DIR=$(cd "$WA_INFRA_DIR" && pwd)
  WA_LOG_DIR=$WA_INFRA_DIR/logs
  mkdir -p "$WA_LOG_DIR" "$WA_CACHE_DIR"
  export WA_INFRA_PROFILE KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT MONGO_PORT
  export WA_INFRA_DIR WA_LOG_DIR WA_TOPIC_PREFIX WA_CACHE_DIR
}

# ------------------------------------------------------------------ locks

# wa_lock FILE TIMEOUT WHAT: holds an exclusive flock on FILE until the calling script exits,
# so two concurrent runs (two terminals, parallel test jobs) do not race each other.
wa_lock() {
  local file=$1 timeout=$2 what=$3 fd
  mkdir -p "$(dirname "$file")"
  exec {fd}>>"$file"
  WA_LOCK_FDS+=("$fd")
  if ! flock -w "$timeout" "$fd"; then
    wa_die "timed out after ${timeout}s waiting for the lock $file ($what is busy in another process)"
  fi
}

WA_LOCK_FDS=()

# wa_close_locks: run in a subshell right before exec'ing a daemon, so the daemon does not
# inherit (and hold forever) the lock descriptors of the script that started it.
wa_close_locks() {
  local fd
  for fd in "${WA_LOCK_FDS[@]}"; do
    exec {fd}>&-
  done
}

# ------------------------------------------------------------------ processes and ports

wa_port_open() {
  local host=$1 port=$2
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wa_port_owner PORT: a human readable hint about who listens on PORT (empty if unknown).
wa_port_owner() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null | awk '{print $4, $6}' | head -n 3 | tr '\n' ' '
  fi
}

# wa_port_pid PORT: the pid of the process listening on PORT on this host (empty if unknown).
wa_port_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -nE 's/.*pid=([0-9]+).*/\1/p' | head -n 1
}

# wa_cpu_ticks PID...: CPU time (user + system, in clock ticks: getconf CLK_TCK) each PID has
# used so far, one figure per PID, 0 for an empty or gone one.
wa_cpu_ticks() {
  local pid
  for pid in "$@"; do
    if [[ -n "$pid" && -r "/proc/$pid/stat" ]]; then
      # the command name (field 2) may hold spaces: count fields from after its ")"
      sed -E 's/^.*\) //' "/proc/$pid/stat" | awk '{print $12 + $13}'
    else
      echo 0
    fi
  done
}

# wa_pid_running PIDFILE PATTERN: prints the pid and returns 0 when PIDFILE names a live
# process whose command line contains PATTERN (guards against a recycled pid).
wa_pid_running() {
  local pidfile=$1 pattern=$2 pid cmdline
  [[ -s "$pidfile" ]] || return 1
  pid=$(tr -cd '0-9' <"$pidfile")
  [[ -n "$pid" ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$pattern"* ]] || return 1
  printf '%s\n' "$pid"
}

# wa_alive PID: true while PID exists and is not a zombie (a zombie has exited already; in a
# container whose init does not reap, it would otherwise look alive forever).
wa_alive() {
  local pid=$1 stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z ]]
}

# wa_spawn PIDFILE LOGFILE CMD...: starts CMD detached (own session, stdin from /dev/null,
# stdout+stderr appended to LOGFILE) and records its pid in PIDFILE.
wa_spawn() {
  local pidfile=$1 logfile=$2
  shift 2
  rm -f "$pidfile"
  # the inner shell writes its own pid, then execs CMD, so the pid is CMD's whether or not
  # setsid had to fork
  (
    wa_close_locks
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@"
  ) </dev/null >>"$logfile" 2>&1 &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.1
  done
  wa_die "could not start $1 (no pid written to $pidfile)" "$logfile"
}

# wa_wait_ready NAME TIMEOUT PIDFILE PATTERN LOGFILE CMD...: polls CMD until it succeeds.
# Fails with the log's tail if the process dies or TIMEOUT seconds pass.
wa_wait_ready() {
  local name=$1 timeout=$2 pidfile=$3 pattern=$4 logfile=$5
  shift 5
  local deadline=$((SECONDS + timeout))
  while true; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if ! wa_pid_running "$pidfile" "$pattern" >/dev/null; then
      # one more try: a daemonizing server may have replaced its pidfile in the meantime
      sleep 0.2
      "$@" >/dev/null 2>&1 && return 0
      wa_die "$name exited during startup" "$logfile"
    fi
    if ((SECONDS >= deadline)); then
      wa_die "$name not ready after ${timeout}s (check: $*)" "$logfile"
    fi
    sleep 0.2
  done
}

# wa_reuse_running NAME PIDFILE PATTERN LOGFILE TIMEOUT PORT PROBE...: when NAME already runs
# (PIDFILE names a live PATTERN process), waits until PROBE succeeds and returns 0; otherwise
# clears the stale PIDFILE, makes sure nothing else holds PORT and returns 1 (start it).
wa_reuse_running() {
  local name=$1 pidfile=$2 pattern=$3 logfile=$4 timeout=$5 port=$6 pid
  shift 6
  if pid=$(wa_pid_running "$pidfile" "$pattern"); then
    wa_wait_ready "$name" "$timeout" "$pidfile" "$pattern" "$logfile" "$@"
    wa_log "$name: already running (pid $pid) on $WA_HOST:$port"
    return 0
  fi
  rm -f "$pidfile"
  wa_ensure_port_free "$name" "$port"
  return 1
}

# wa_ensure_port_free NAME PORT: dies if something that is not ours listens on PORT.
wa_ensure_port_free() {
  local name=$1 port=$2 owner
  if wa_port_open "$WA_HOST" "$port"; then
    owner=$(wa_port_owner "$port")
    wa_die "cannot start $name: $WA_HOST:$port is already in use by another process${owner:+ ($owner)}; stop it, or pick other ports (--ports test, or KAFKA_PORT / REDIS_PORT / MONGO_PORT)"
  fi
}

# wa_stop NAME PIDFILE PATTERN TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
wa_stop() {
  local name=$1 pidfile=$2 pattern=$3 timeout=$4 pid deadline
  if ! pid=$(wa_pid_running "$pidfile" "$pattern"); then
    rm -f "$pidfile"
    wa_log "$name: not running"
    return 0
  fi
  wa_log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while wa_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      wa_warn "$name: pid $pid still alive after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local i
      for ((i = 0; i < 50; i++)); do
        wa_alive "$pid" || break
        sleep 0.1
      done
      if wa_alive "$pid"; then
        wa_die "$name: pid $pid survived SIGKILL"
      fi
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  wa_log "$name: stopped"
}

# wa_status NAME PIDFILE PATTERN ADDR: prints "NAME running ..." / "NAME stopped";
# returns 0 when running, 3 when stopped (LSB status convention).
wa_status() {
  local name=$1 pidfile=$2 pattern=$3 addr=$4 pid
  if pid=$(wa_pid_running "$pidfile" "$pattern"); then
    printf '%-6s running  pid %-7s %s\n' "$name" "$pid" "$addr"
    return 0
  fi
  printf '%-6s stopped  %s\n' "$name" "$addr"
  return 3
}

# wa_usage_exit SCRIPT: the shared usage text of kafka.sh, redis.sh and mongo.sh.
wa_usage_exit() {
  printf 'usage: %s install|start|stop|status [--ports test|default]\n' "$1" >&2
  exit 2
}

# wa_infra_bin: the path of wa-infra (tools/infra: Kafka and FerretDB probes, topic creation
# from libs/contract) in the build tree of the profile: build/test for the test profile (the
# tree `make test` builds), build/run otherwise (`make run`, `make bench`). WA_INFRA_BIN
# overrides it.
wa_infra_bin() {
  local kind=run
  [[ "$WA_INFRA_PROFILE" == test ]] && kind=test
  printf '%s\n' "${WA_INFRA_BIN:-$WA_REPO_ROOT/build/$kind/bin/wa-infra}"
}

# wa_infra_ensure: builds wa-infra (only that target and the libraries it needs) when the
# profile's tree has none yet, e.g. `infra.sh start` on a fresh clone before any `make`.
# Concurrent callers (kafka.sh and mongo.sh start in parallel) build it once.
wa_infra_ensure() {
  local bin kind=run
  bin=$(wa_infra_bin)
  [[ -x "$bin" ]] && return 0
  [[ -z "${WA_INFRA_BIN:-}" ]] || wa_die "WA_INFRA_BIN=$WA_INFRA_BIN is not executable"
  [[ "$WA_INFRA_PROFILE" == test ]] && kind=test
  mkdir -p "$WA_REPO_ROOT/build"
  (
    flock -w 900 9 || wa_die "timed out waiting for another build of wa-infra"
    if [[ ! -x "$bin" ]]; then
      wa_log "building wa-infra (build/$kind) for the infrastructure probes"
      "$WA_LOCAL_DIR/build.sh" "$kind" wa-infra >&2 || wa_die "building wa-infra failed"
    fi
  ) 9>>"$WA_REPO_ROOT/build/.wa-infra.lock"
}

# wa_infra ARGS...: runs wa-infra (see tools/infra/wa_infra.c for its commands). Leak checks of
# a sanitizer build are the tests' business, not the probes'.
wa_infra() {
  local bin
  bin=$(wa_infra_bin)
  [[ -x "$bin" ]] || wa_die "$bin is missing (deploy/local/build.sh builds it)"
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$bin" "$@"
}

# ------------------------------------------------------------------ daemons (run.sh, bench.d/*)

# wa_daemon_start LOG CMD...: starts CMD in the background (this shell's child, so `wait` works),
# stdout and stderr appended to LOG; its pid goes to WA_DAEMON_PID and WA_DAEMON_PIDS.
WA_DAEMON_PIDS=()
wa_daemon_start() {
  local log=$1
  shift
  "$@" >>"$log" 2>&1 &
  WA_DAEMON_PID=$!
  WA_DAEMON_PIDS+=("$WA_DAEMON_PID")
}

# wa_daemon_forget PID: drops PID from WA_DAEMON_PIDS (it exited and was reaped).
wa_daemon_forget() {
  local pid keep=()
  for pid in "${WA_DAEMON_PIDS[@]}"; do
    [[ "$pid" == "$1" ]] || keep+=("$pid")
  done
  WA_DAEMON_PIDS=("${keep[@]}")
}

# wa_sigint_restore SCRIPT ARGS...: a script started in the background by a non-interactive
# shell (`make run &` in a script or CI job) inherits SIGINT ignored, and bash can neither trap
# nor reset a signal ignored at entry, while the daemons it starts still stop on SIGINT (their own
# handlers): a SIGINT to the group would stop the daemons, the supervisor would restart them and
# the script's trap would never run. When SIGINT is ignored, this runs `bash SCRIPT ARGS...` again
# with SIGINT at its default (coreutils' env --default-signal); otherwise it returns.
wa_sigint_restore() {
  local ign
  ign=$(awk '/^SigIgn:/ {print $2}' "/proc/$$/status" 2>/dev/null) || return 0
  [[ "$ign" =~ ^[0-9a-fA-F]+$ ]] && ((16#$ign & 2)) || return 0
  exec env --default-signal=INT bash "$@"
}

# Supervision, as Kubernetes restarts a container: wa_supervise_add NAME LOG CMD... starts CMD
# with wa_daemon_start and remembers how; wa_supervise then waits, and a child that exits is
# logged and started again after a back-off (1 s, doubling to 30 s; back to 1 s once it had
# run 60 s). It returns only when no child is left; stop it from a signal trap
# (wa_daemons_stop "${WA_DAEMON_PIDS[@]}" then exit). WA_SUPERVISE_NAME maps pid -> name.
declare -A WA_SUPERVISE_NAME=() WA_SUPERVISE_CMD=() WA_SUPERVISE_LOG=() WA_SUPERVISE_SINCE=() \
  WA_SUPERVISE_BACKOFF=()
wa_supervise_add() {
  local name=$1 log=$2
  shift 2
  WA_SUPERVISE_CMD[$name]=$(printf '%q ' "$@")
  WA_SUPERVISE_LOG[$name]=$log
  wa_supervise_spawn "$name"
}
wa_supervise_spawn() {
  local name=$1
  eval "wa_daemon_start \"\${WA_SUPERVISE_LOG[\$name]}\" ${WA_SUPERVISE_CMD[$name]}"
  WA_SUPERVISE_NAME[$WA_DAEMON_PID]=$name
  WA_SUPERVISE_SINCE[$name]=$SECONDS
}
wa_supervise() {
  local dead status name up delay
  while ((${#WA_DAEMON_PIDS[@]})); do
    dead='' status=0
    wait -n -p dead "${WA_DAEMON_PIDS[@]}" || status=$?
    [[ -n "$dead" ]] || continue # interrupted by a signal whose trap returned
    wa_daemon_forget "$dead"
    name=${WA_SUPERVISE_NAME[$dead]:-}
    unset "WA_SUPERVISE_NAME[$dead]"
    [[ -n "$name" ]] || continue
    up=$((SECONDS - WA_SUPERVISE_SINCE[$name]))
    delay=${WA_SUPERVISE_BACKOFF[$name]:-1}
    ((up < 60)) || delay=1
    printf '[supervise] %s (pid %s) exited with status %s after %ss; restarting in %ss\n' \
      "$name" "$dead" "$status" "$up" "$delay" >&2
    sleep "$delay" &
    wait $! || true # a signal's trap runs at once
    WA_SUPERVISE_BACKOFF[$name]=$((delay * 2 > 30 ? 30 : delay * 2))
    wa_supervise_spawn "$name"
    printf '[supervise] %s restarted (pid %s, log %s)\n' "$name" "$WA_DAEMON_PID" \
      "${WA_SUPERVISE_LOG[$name]}" >&2
  done
}

# wa_readyz_wait URL TIMEOUT [PID [LOG]]: polls URL/readyz until it answers 2xx. Returns 1,
# after saying why (and the tail of LOG), when TIMEOUT seconds pass or PID exits first.
wa_readyz_wait() {
  local url=$1 timeout=$2 pid=${3:-} log=${4:-} deadline
  deadline=$((SECONDS + timeout))
  until curl -fs -o /dev/null "$url/readyz" 2>/dev/null; do
    if [[ -n "$pid" ]] && ! wa_alive "$pid"; then
      wa_warn "$url: the process (pid $pid) exited before it was ready"
      [[ -n "$log" && -s "$log" ]] && tail -n 20 "$log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      wa_warn "$url is not ready after ${timeout}s: $(curl -sS "$url/readyz" 2>&1 | head -c 300)"
      [[ -n "$log" && -s "$log" ]] && tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# wa_daemons_stop TIMEOUT PID...: SIGTERM to each, waits up to TIMEOUT seconds for all, then
# SIGKILL to what is left, and reaps them.
wa_daemons_stop() {
  local timeout=$1 pid deadline alive
  shift
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    alive=0
    for pid in "$@"; do
      wa_alive "$pid" && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
