#!/usr/bin/env bash
# supervise.sh: deploy/local/lib.sh's supervisor (what `make run` uses) with real processes: a
# child that exits is logged and restarted with growing back-off while the others keep running,
# and SIGTERM to the supervisor stops every child, leaving no process behind; a script started
# in the background (SIGINT ignored) stops on SIGINT after wa_sigint_restore.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/wa-supervise-XXXXXX)
fail() {
  echo "FAIL: $*" >&2
  echo "--- supervisor log" >&2
  cat "$tmp/supervisor.log" >&2 || true
  exit 1
}
sup=''
cleanup() {
  [[ -z "$sup" ]] || kill -KILL "$sup" 2>/dev/null || true
  pkill -KILL -f "$tmp/" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# flaky: exits 3 on its first two runs, then stays up; steady: stays up
cat >"$tmp/flaky.sh" <<'SH'
#!/usr/bin/env bash
n=$(cat "$1/count" 2>/dev/null || echo 0)
echo $((n + 1)) >"$1/count"
if ((n < 2)); then sleep 0.2; exit 3; fi
exec sleep 1000
SH
cat >"$tmp/steady.sh" <<'SH'
#!/usr/bin/env bash
exec sleep 1000
SH
chmod +x "$tmp/flaky.sh" "$tmp/steady.sh"

(
  # shellcheck source=deploy/local/lib.sh
  source "$root/deploy/local/lib.sh"
  trap 'wa_daemons_stop 5 "${WA_DAEMON_PIDS[@]}"; exit 0' TERM
  wa_supervise_add steady "$tmp/steady.log" "$tmp/steady.sh"
  echo "steady $WA_DAEMON_PID" >"$tmp/steady.pid"
  wa_supervise_add flaky "$tmp/flaky.log" "$tmp/flaky.sh" "$tmp"
  wa_supervise
) >"$tmp/supervisor.log" 2>&1 &
sup=$!

start=$SECONDS
until [[ "$(cat "$tmp/count" 2>/dev/null)" == 3 ]]; do
  ((SECONDS - start < 20)) || fail "flaky was not started three times within 20 s"
  kill -0 "$sup" 2>/dev/null || fail "the supervisor exited"
  sleep 0.1
done
took=$((SECONDS - start))
# back-off 1 s then 2 s between the three starts
((took >= 2)) || fail "three starts in ${took}s: no back-off"
grep -q 'flaky (pid [0-9]*) exited with status 3 after [01]s; restarting in 1s' "$tmp/supervisor.log" ||
  fail "first exit not logged with a 1 s back-off"
grep -q 'flaky (pid [0-9]*) exited with status 3 after [01]s; restarting in 2s' "$tmp/supervisor.log" ||
  fail "second exit not logged with a 2 s back-off"
(($(grep -c 'flaky restarted' "$tmp/supervisor.log") == 2)) || fail "flaky not restarted twice"
grep -q steady "$tmp/supervisor.log" && fail "steady was touched"
read -r _ steady_pid <"$tmp/steady.pid"
kill -0 "$steady_pid" 2>/dev/null || fail "steady (pid $steady_pid) is not running"

kill -TERM "$sup"
for _ in $(seq 100); do
  kill -0 "$sup" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$sup" 2>/dev/null && fail "the supervisor did not stop within 10 s of SIGTERM"
wait "$sup" || fail "the supervisor exited with status $?"
sup=''
sleep 0.2
left=$(pgrep -f "$tmp/" || true)
[[ -z "$left" ]] || fail "processes left behind: $left"

# A script started in the background by this (non-interactive) shell inherits SIGINT ignored,
# which bash cannot trap; wa_sigint_restore (what run.sh calls first) runs it again with SIGINT
# at its default, so its trap runs. The control, without it, ignores SIGINT.
for mode in restore control; do
  cat >"$tmp/intr-$mode.sh" <<SH
#!/usr/bin/env bash
source "$root/deploy/local/lib.sh"
[[ $mode != restore ]] || wa_sigint_restore "\$0" "\$@"
trap 'echo stopped >"$tmp/intr-$mode.out"; exit 0' INT
echo up >"$tmp/intr-$mode.up"
while :; do sleep 0.1; done
SH
  chmod +x "$tmp/intr-$mode.sh"
  "$tmp/intr-$mode.sh" &
  intr=$!
  for _ in $(seq 100); do
    [[ -s "$tmp/intr-$mode.up" ]] && break
    sleep 0.1
  done
  [[ -s "$tmp/intr-$mode.up" ]] || fail "intr-$mode.sh did not start"
  kill -INT "$intr"
  for _ in $(seq 50); do
    kill -0 "$intr" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $mode == restore ]]; then
    kill -0 "$intr" 2>/dev/null && fail "a background script with wa_sigint_restore ignored SIGINT"
    [[ -s "$tmp/intr-$mode.out" ]] || fail "its SIGINT trap did not run"
  else
    kill -0 "$intr" 2>/dev/null || fail "the control stopped on SIGINT: the case is not tested"
    kill -TERM "$intr"
  fi
  wait "$intr" 2>/dev/null || true
done
echo "supervise: ok (flaky started 3 times in ${took}s, steady kept, nothing left after SIGTERM;" \
  "a background script stops on SIGINT)"
