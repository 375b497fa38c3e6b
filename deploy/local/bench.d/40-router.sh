#!/usr/bin/env bash
# 40-router.sh: auto-reply latency, end to end: a signed inbound webhook ("price") POSTed to
# wa-ingest -> inbound.message -> wa-router (deploy/local/router-rules.json) -> outbound.request
# -> wa-notify -> send accepted at wa-cloudsim. Open loop at RT_BENCH_RATE messages/s (default
# 200) for RT_BENCH_SECONDS (default 15), each from a new customer; latency = cloudsim's accept
# time minus the moment the webhook POST started (same host clock, ms resolution). Prints
# p50/p90/p99/max. Target: p99 <= 50 ms at 200/s.
#
# Run by deploy/local/bench.sh after the build and the infrastructure on default ports; also
# runnable alone: WA_BIN_DIR (default build/run/bin), WA_KAFKA_BROKERS, WA_REDIS_URL.
# Starts its own wa-cloudsim, wa-ingest, wa-notify and wa-router on free ports with a unique
# topic prefix, and stops them at the end. Limits in the simulator and wa-notify's pacing are
# raised so that the measurement is the pipeline's latency, not Meta's throughput cap.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
BIN=${WA_BIN_DIR:-$ROOT/build/run/bin}
export WA_KAFKA_BROKERS=${WA_KAFKA_BROKERS:-127.0.0.1:9092}
export WA_REDIS_URL=${WA_REDIS_URL:-redis://127.0.0.1:6379/0}
RATE=${RT_BENCH_RATE:-200}
DURATION=${RT_BENCH_SECONDS:-15}
WORK=$(mktemp -d /tmp/wa-bench-router.XXXXXX)
PREFIX="bench$(date +%s)$$."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIM=$(free_port); INGEST=$(free_port); NOTIFY=$(free_port); ROUTER=$(free_port)
trap 'wa_daemons_stop 10 "${WA_DAEMON_PIDS[@]}"' EXIT
common=(WA_TOPIC_PREFIX="$PREFIX" WA_APP_SECRET=bench-secret WA_ACCESS_TOKEN=bench-token
        WA_LOG_LEVEL=warn)
wa_daemon_start "$WORK/cloudsim.log" env "${common[@]}" WA_LISTEN=127.0.0.1:$SIM \
    WA_WEBHOOK_URL=http://127.0.0.1:$INGEST/webhook WA_SIM_LIMITS=off WA_SIM_MPS=100000 \
    "$BIN/wa-cloudsim"
wa_daemon_start "$WORK/ingest.log" env "${common[@]}" WA_LISTEN=127.0.0.1:$INGEST \
    WA_SPOOL_DIR="$WORK/spool" WA_DEDUP_TTL=10m "$BIN/wa-ingest"
wa_daemon_start "$WORK/notify.log" env "${common[@]}" WA_LISTEN=127.0.0.1:$NOTIFY \
    WA_GRAPH_URL=http://127.0.0.1:$SIM/v21.0 WA_NOTIFY_MPS=100000 "$BIN/wa-notify"
wa_daemon_start "$WORK/router.log" env "${common[@]}" WA_LISTEN=127.0.0.1:$ROUTER \
    WA_ROUTER_RULES="$ROOT/deploy/local/router-rules.json" "$BIN/wa-router"
i=0
for port in $SIM $INGEST $NOTIFY $ROUTER; do
    wa_readyz_wait "http://127.0.0.1:$port" 30 "${WA_DAEMON_PIDS[$i]}" || exit 1
    i=$((i + 1))
done
python3 - "$INGEST" "$SIM" "$RATE" "$DURATION" <<'PY'
import datetime, hashlib, hmac, http.client, json, queue, sys, threading, time

ingest, sim, rate, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
SECRET = b"bench-secret"
PNID = "100000000000001"

def body(frm, seq):
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "200000000000001",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Bench User"}, "wa_id": frm}],
        "messages": [{"from": frm, "id": "wamid.bench.%s.%d" % (frm, seq),
                      "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": "price"}}]}}]}]}).encode()

sent = {}
post_ms = []
lock = threading.Lock()
jobs = queue.Queue()

def worker():
    conn = http.client.HTTPConnection("127.0.0.1", ingest, timeout=10)
    while True:
        frm = jobs.get()
        if frm is None:
            return
        b = body(frm, 0)
        sig = "sha256=" + hmac.new(SECRET, b, hashlib.sha256).hexdigest()
        t0 = time.time()
        try:
            conn.request("POST", "/webhook", b, {"Content-Type": "application/json",
                                                  "X-Hub-Signature-256": sig})
            r = conn.getresponse(); r.read()
            ok = r.status == 200
        except Exception:
            conn = http.client.HTTPConnection("127.0.0.1", ingest, timeout=10); ok = False
        with lock:
            if ok:
                sent[frm] = t0
                post_ms.append((time.time() - t0) * 1000)

def replies(prefix_digits):
    c = http.client.HTTPConnection("127.0.0.1", sim, timeout=30)
    c.request("GET", "/_sim/messages?limit=100000"); data = json.loads(c.getresponse().read())
    out = {}
    for m in data.get("data", []):
        to = m.get("wa_id") or m.get("to") or ""
        if to.startswith(prefix_digits) and to not in out:
            t = datetime.datetime.strptime(m["time"].replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
            out[to] = t.timestamp()
    return out

def run(prefix_digits, n, rate):
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(16)]
    for t in threads: t.start()
    start = time.time()
    for i in range(n):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0: time.sleep(delay)
        jobs.put("%s%05d" % (prefix_digits, i))
    for _ in threads: jobs.put(None)
    for t in threads: t.join()
    return time.time() - start

# warm-up: consumer groups join, connections open
run("1777", 20, 20)
deadline = time.time() + 60
while time.time() < deadline and len(replies("1777")) < 20:
    time.sleep(0.2)
sent.clear(); post_ms.clear()
n = int(rate * duration)
elapsed = run("1888", n, rate)
deadline = time.time() + 30
got = {}
while time.time() < deadline:
    got = replies("1888")
    if len(got) >= len(sent): break
    time.sleep(0.5)
lat = sorted((got[k] - sent[k]) * 1000 for k in sent if k in got)
def pct(p): return lat[min(len(lat) - 1, int(round(p / 100 * len(lat))) - 1)] if lat else float("nan")
post_ms.sort()
print("router bench: %d inbound webhooks at %.0f/s offered (%.1f/s achieved), %d auto-replies seen, %d missing"
      % (len(sent), rate, len(sent) / elapsed, len(lat), len(sent) - len(lat)))
print("  webhook POST at wa-ingest: p50 %.1f ms  p99 %.1f ms" % (
      post_ms[len(post_ms) // 2] if post_ms else float("nan"),
      post_ms[max(0, int(len(post_ms) * 0.99) - 1)] if post_ms else float("nan")))
print("  webhook -> reply accepted at wa-cloudsim: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (target p99 <= 50 ms)"
      % (pct(50), pct(90), pct(99), lat[-1] if lat else float("nan")))
PY
# The router's own share: consume -> every action acknowledged (its histogram).
curl -fs "http://127.0.0.1:$ROUTER/metrics" | python3 -c '
import sys
b = []
for line in sys.stdin:
    if line.startswith("wa_router_message_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        b.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
if b and b[-1][1] > 0:
    total = b[-1][1]
    def q(p):
        return next(le for le, c in b if c >= p * total)
    print("  inside wa-router (consume -> actions acked, histogram bounds): p50 <= %g ms  p99 <= %g ms"
          % (q(0.5) * 1000, q(0.99) * 1000))
' || true

