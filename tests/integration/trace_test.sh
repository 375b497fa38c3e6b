#!/usr/bin/env bash
# trace_test.sh: spans across daemons (libs/trace). wa-cloudsim, wa-ingest, wa-router and
# wa-notify run on free ports against the real Kafka and Redis (unique prefix and groups) with
# WA_OTLP_ENDPOINT at a small OTLP/HTTP receiver; one inbound "price" from the simulated
# customer must yield one trace holding wa-ingest's, wa-router's and wa-notify's spans and the
# Cloud API call's, each the child of the one before (sampling itself is covered by tests/unit/trace). Then the metric
# names the four daemons expose are checked against the sources and the rules and dashboards.
set -euo pipefail
bin=${WA_BIN_DIR:?}
src=${WA_SOURCE_DIR:?}
: "${WA_KAFKA_BROKERS:?}" "${WA_REDIS_URL:?}"
work=$(mktemp -d)
pids=()
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done; exit 1; }
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the receiver: every POST /v1/traces body appended to spans.jsonl as one line
otlp=$(free_port)
python3 - "$otlp" "$work/spans.jsonl" >"$work/otlp.log" 2>&1 <<'PY' &
import http.server, json, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/v1/traces":
            out.write(json.dumps(json.loads(body)) + "\n"); out.flush()
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)

export WA_TOPIC_PREFIX="tt$$x$RANDOM."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
sim=$(free_port) ig=$(free_port) rt=$(free_port) nt=$(free_port)
common=(WA_SANDBOX=1 WA_SANDBOX_PHONE_NUMBER_ID=100000000000001 WA_SANDBOX_DISPLAY_NUMBER=+15550000001
        WA_SANDBOX_WABA_ID=200000000000001 WA_ACCESS_TOKEN=sandbox-token WA_APP_SECRET=sandbox-secret
        WA_VERIFY_TOKEN=sandbox-verify WA_GRAPH_URL="http://127.0.0.1:$sim/v21.0"
        WA_WEBHOOK_URL="http://127.0.0.1:$ig/webhook" WA_OTLP_ENDPOINT="http://127.0.0.1:$otlp"
        WA_ROUTER_RULES="$src/deploy/local/router-rules.json")
"$bin/wactl" topics ensure >/dev/null || fail "topics ensure"
start() { # name port extra-env...
    local name=$1 port=$2
    shift 2
    env "${common[@]}" WA_LISTEN="127.0.0.1:$port" "$@" "$bin/$name" >"$work/$name.log" 2>&1 &
    pids+=($!)
}
start wa-cloudsim "$sim"
start wa-ingest "$ig" WA_SPOOL_DIR="$work/spool"
start wa-router "$rt" WA_ROUTER_GROUP="${WA_TOPIC_PREFIX}router"
start wa-notify "$nt" WA_NOTIFY_GROUP="${WA_TOPIC_PREFIX}notify"
for _ in $(seq 300); do
    "$bin/wactl" health --url "http://127.0.0.1:$ig" --url "http://127.0.0.1:$rt" \
        --url "http://127.0.0.1:$nt" >/dev/null 2>&1 && break
    sleep 0.2
done
"$bin/wactl" health --url "http://127.0.0.1:$ig" --url "http://127.0.0.1:$rt" \
    --url "http://127.0.0.1:$nt" >/dev/null || fail "daemons not ready"
sleep 3 # the consumer groups' first assignment

curl -fsS -X POST "http://127.0.0.1:$sim/_sim/inbound" -H 'Content-Type: application/json' \
    -d '{"from":"15551234567","name":"Grace","type":"text","text":{"body":"price"}}' >/dev/null ||
    fail "inbound"

check() {
    python3 - "$work/spans.jsonl" <<'PY'
import collections, json, sys
spans = []
for line in open(sys.argv[1]):
    for rs in json.loads(line)["resourceSpans"]:
        svc = rs["resource"]["attributes"][0]["value"]["stringValue"]
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                spans.append((svc, s))
by_trace = collections.defaultdict(dict)
names = {"ingest webhook": "wa-ingest", "router decide and act": "wa-router",
         "notify send": "wa-notify"}
for svc, s in spans:
    if names.get(s["name"]) == svc:
        by_trace[s["traceId"]].setdefault(svc, s)
for trace, svcs in by_trace.items():
    if {"wa-ingest", "wa-router", "wa-notify"} <= set(svcs):
        ig, rt, nt = svcs["wa-ingest"], svcs["wa-router"], svcs["wa-notify"]
        assert rt.get("parentSpanId") == ig["spanId"], (ig, rt)
        assert nt.get("parentSpanId") == rt["spanId"], (rt, nt)
        assert int(ig["startTimeUnixNano"]) <= int(rt["startTimeUnixNano"]) <= int(nt["startTimeUnixNano"])
        calls = [s for svc, s in spans if s["traceId"] == trace and s.get("parentSpanId") == nt["spanId"]]
        stages = {s["name"] for svc, s in spans
                  if s["traceId"] == trace and s.get("parentSpanId") == ig["spanId"]}
        if not calls or not {"ingest verify, split, dedupe", "ingest publish"} <= stages:
            continue  # a child span may come in a later batch
        print(trace, ig["name"], "->", rt["name"], "->", nt["name"], "->", calls[0]["name"])
        sys.exit(0)
sys.exit(1)
PY
}
for _ in $(seq 60); do
    if out=$(check 2>&1); then break; fi
    sleep 0.5
done
check >/dev/null 2>&1 || fail "no trace with spans of wa-ingest, wa-router and wa-notify: $(cat "$work/spans.jsonl" 2>/dev/null | head -c 2000)"
echo "trace: $out"

# the metric names these daemons expose are the ones tests/ops finds in the sources, and every
# rule and dashboard query names one of them (tests/ops/metric_names.py --scrape)
eval "$("$src/deploy/local/ops-tools.sh" --print)"
args=()
for f in "$src"/deploy/prometheus/rules/*.yml; do args+=(--rules "$f"); done
for f in "$src"/deploy/grafana/dashboards/*.json; do args+=(--dashboards "$f"); done
for p in "$sim" "$ig" "$rt" "$nt"; do args+=(--scrape "http://127.0.0.1:$p/metrics"); done
"$OPS_PYTHON" "$src/tests/ops/metric_names.py" --root "$src" "${args[@]}" ||
    fail "metric names scraped from the daemons"
