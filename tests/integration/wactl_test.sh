#!/usr/bin/env bash
# wactl_test.sh: tools/wactl against the real Kafka and Redis and the real binaries: wa-cloudsim
# (the Cloud API) and wa-notify on free ports, with a unique topic prefix and group.
#   topics ensure creates the contract's topics; health reports wa-notify ready (0) and a
#   closed port unreachable (3), and through wa-gateway's /v1/health a node down (1); send --wait of a template is accepted by the simulator (0),
#   and of a text outside the 24-hour window fails (1) into outbound.dlq; tail shows a send;
#   trace by request id shows request, result and dead letter; dlq list/show find it; dlq
#   replay refuses without a terminal, --dry-run sends nothing, --yes produces the request
#   under a new id that wa-notify answers; spool inspect reads a spool file written here in
#   wa-ingest's frame format (a torn tail is fine, damage exits 1); usage errors exit 2.
set -euo pipefail
bin=${WA_BIN_DIR:?}
: "${WA_KAFKA_BROKERS:?}" "${WA_REDIS_URL:?}"
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.log; do echo "== $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export WA_TOPIC_PREFIX="tw$$x$RANDOM."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
sim_port=$(free_port) nt_port=$(free_port)
phone=100000000000001
common=(WA_SANDBOX=1 WA_SANDBOX_PHONE_NUMBER_ID=$phone WA_ACCESS_TOKEN=sandbox-token WA_APP_SECRET=sandbox-secret
        WA_GRAPH_URL="http://127.0.0.1:$sim_port/v21.0" WA_WEBHOOK_URL=http://127.0.0.1:1/webhook)
wactl() { "$bin/wactl" "$@"; }
expect() { # expect RC CMD...: runs CMD, fails unless it exits RC; output in $out
    local want=$1 rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    ((rc == want)) || fail "'$*' exited $rc, want $want: $out"
}

expect 0 wactl topics ensure --partitions 2
grep -qx "${WA_TOPIC_PREFIX}outbound.request 2" <<<"$out" || fail "topics ensure: $out"

env "${common[@]}" WA_LISTEN="127.0.0.1:$sim_port" "$bin/wa-cloudsim" >"$work/cloudsim.log" 2>&1 &
pids+=($!)
env "${common[@]}" WA_LISTEN="127.0.0.1:$nt_port" WA_NOTIFY_GROUP="${WA_TOPIC_PREFIX}notify" \
    "$bin/wa-notify" >"$work/notify.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
    wactl health --url "http://127.0.0.1:$nt_port" >/dev/null 2>&1 && break
    sleep 0.2
done
expect 0 wactl health --url "http://127.0.0.1:$nt_port"
grep -q "ready wa-notify" <<<"$out" || fail "health: $out"
expect 3 wactl health --url "http://127.0.0.1:$nt_port" --url http://127.0.0.1:1
# through the gateway's GET /v1/health (its own line depends on MongoDB: 0 or 1 both fine)
gw_port=$(free_port)
env "${common[@]}" WA_LISTEN="127.0.0.1:$gw_port" WA_GATEWAY_KEY_PEPPER=0123456789abcdef0123456789abcdef \
    WA_GATEWAY_HEALTH_TARGETS="wa-notify=http://127.0.0.1:$nt_port,wa-router=http://127.0.0.1:1" \
    "$bin/wa-gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    rc=0
    out=$(wactl health --gateway "http://127.0.0.1:$gw_port" 2>&1) || rc=$?
    ((rc != 3)) && break
    sleep 0.2
done
((rc == 1)) || fail "health --gateway with an unreachable node exited $rc: $out"
grep -q "wa-notify:127.0.0.1:$nt_port  *connected" <<<"$out" || fail "gateway health: $out"
grep -q "wa-router:127.0.0.1:1  *disconnected" <<<"$out" || fail "gateway health: $out"

# a live tail started before the send sees it
wactl tail outbound.request --count 1 --timeout 60s --type wa.outbound.request.v1 >"$work/tail.out" 2>&1 &
tail_pid=$!
sleep 3

expect 0 wactl send --to 15550001111 --template hello_world --wait --timeout 60s
grep -q "status=accepted" <<<"$out" || fail "template send: $out"
expect 1 wactl send --to 15550002222 --text "outside the window" --wait --timeout 60s
rid=$(sed -n 's/^request_id=\([^ ]*\) trace_id=\([0-9a-f]*\).*/\1/p' <<<"$out")
trace=$(sed -n 's/^request_id=[^ ]* trace_id=\([0-9a-f]*\).*/\1/p' <<<"$out")
[[ -n "$rid" && ${#trace} == 32 ]] || fail "send printed no request and trace id: $out"
grep -q "reason=window" <<<"$out" || fail "text send: $out"

wait "$tail_pid" || fail "tail exited $?: $(cat "$work/tail.out")"
grep -q "wa.outbound.request.v1" "$work/tail.out" || fail "tail: $(cat "$work/tail.out")"

expect 0 wactl trace "$rid"
for t in outbound.request outbound.result outbound.dlq; do
    grep -q "${WA_TOPIC_PREFIX}$t" <<<"$out" || fail "trace $rid has no $t: $out"
done
expect 0 wactl trace "$trace"
expect 1 wactl trace no-such-id --idle 1s

expect 0 wactl dlq list
grep -q "request_id=$rid .*reason=window code=131047" <<<"$out" || fail "dlq list: $out"
expect 0 wactl dlq show "$rid"
grep -q '"request"' <<<"$out" || fail "dlq show: $out"
expect 1 wactl dlq show no-such-request --idle 1s

expect 1 wactl dlq replay "$rid" </dev/null
expect 0 wactl dlq replay "$rid" --dry-run
grep -q "dry run: not sent" <<<"$out" || fail "dry run: $out"
expect 0 wactl dlq replay "$rid" --yes
new=$(sed -n "s/^[0-9]*:[0-9]* $rid -> \\([^ ]*\\)\$/\\1/p" <<<"$out")
[[ -n "$new" ]] || fail "replay printed no new id: $out"
# wa-notify answers the replayed request (still outside the window: failed again, new id)
expect 0 wactl tail outbound.result --from-beginning --request-id "$new" --count 1 --timeout 60s
grep -q "request_id=$new" <<<"$out" || fail "no result for the replayed request: $out"

# spool inspect: two records, then a torn tail; then damage before the end
mkdir -p "$work/spool"
python3 - "$work/spool" <<'PY'
import struct, sys, zlib
def frame(*fields):
    payload = b"".join(struct.pack("<I", len(f)) + f for f in fields)
    return b"WASP" + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
recs = [frame(b"wa.inbound.message", b"100:1555", b"01ID%d" % i, b"wa.inbound.message.v1",
              b"wa-ingest/test", tp, b'{"specversion":"1.0"}') for i in range(2)]
open(sys.argv[1] + "/spool-01A.log", "wb").write(b"".join(recs) + recs[0][:10])
open(sys.argv[1] + "/spool-01B.log", "wb").write(recs[0][:-3] + b"xyz" + recs[1])
PY
expect 1 wactl spool inspect "$work/spool"
grep -q "0af7651916cd43dd8448eb211c80319c" <<<"$out" || fail "spool: $out"
grep -q "torn tail" <<<"$out" || fail "spool torn tail: $out"
grep -q "DAMAGED" <<<"$out" || fail "spool damage: $out"
rm "$work/spool/spool-01B.log"
expect 0 wactl spool inspect "$work/spool"
grep -q "1 file(s), 2 record(s)" <<<"$out" || fail "spool summary: $out"

expect 2 wactl
expect 2 wactl tail
expect 2 wactl send --to 1
expect 2 wactl dlq replay
expect 2 wactl health --timeout nonsense
for c in health send tail trace dlq spool topics; do
    expect 0 wactl "$c" --help
    grep -q "^usage: wactl $c" <<<"$out" || fail "$c --help: $out"
done
echo "wactl: topics, health, send, tail, trace, dlq list/show/replay, spool inspect and exit codes as documented"
