#!/usr/bin/env python3
"""hops.py: the per-hop latency breakdown of the auto-reply pipeline, from the daemons' spans.

  hops.py serve PORT OUT     an OTLP/HTTP (JSON) receiver on 127.0.0.1:PORT: every span POSTed
                             to /v1/traces is appended to OUT as one JSON line
  hops.py report OUT [N]     groups the spans by trace and prints p50/p90/p99 of each hop for
                             the traces that went the whole way (at most the last N traces)

The daemons already record one span per stage with the W3C trace context they propagate
(libs/trace): wa-ingest "ingest webhook" (received -> answered, after the Kafka ack) with its
children "ingest verify, split, dedupe" and "ingest publish"; wa-router "router decide and act"
(consumed -> every action acknowledged); wa-notify "notify send" (consumed -> result produced)
with its child "notify Cloud API POST /messages". All times are the daemons' wall clocks on one
host, so the gaps between spans are the queues between daemons (Kafka, consumer fetch).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOPS = [
    # (label, function of the trace's spans -> milliseconds)
    ("ingest: verify, split, dedupe", lambda s: dur(s, "ingest verify, split, dedupe")),
    ("ingest: publish (Kafka ack)", lambda s: dur(s, "ingest publish")),
    ("Kafka -> router consumed", lambda s: gap(s, "ingest webhook", "router decide and act")),
    ("router: decide and act", lambda s: dur(s, "router decide and act")),
    ("Kafka -> notify consumed", lambda s: gap(s, "router decide and act", "notify send")),
    ("notify: claim, policy, pace", lambda s: ms(start(s, "notify Cloud API POST /messages")
                                                 - start(s, "notify send"))),
    ("notify: Cloud API POST", lambda s: dur(s, "notify Cloud API POST /messages")),
    ("webhook received -> Cloud API answered", lambda s: ms(end(s, "notify Cloud API POST /messages")
                                                           - start(s, "ingest webhook"))),
]
NEEDED = ["ingest webhook", "ingest verify, split, dedupe", "ingest publish",
          "router decide and act", "notify send", "notify Cloud API POST /messages"]


def ms(ns):
    return ns / 1e6


def start(spans, name):
    return spans[name][0]


def end(spans, name):
    return spans[name][1]


def dur(spans, name):
    return ms(end(spans, name) - start(spans, name))


def gap(spans, a, b):
    return ms(start(spans, b) - end(spans, a))


def serve(port, out):
    sink = open(out, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                doc = json.loads(body)
                for rs in doc.get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            sink.write(json.dumps({"t": sp["traceId"], "n": sp["name"],
                                                   "s": int(sp["startTimeUnixNano"]),
                                                   "e": int(sp["endTimeUnixNano"])}) + "\n")
                code = 200
            except (ValueError, KeyError, TypeError):
                code = 400
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def pct(v, p):
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v))) - 1))]


def report(path, last):
    traces = {}
    order = []
    for line in open(path):
        sp = json.loads(line)
        if sp["t"] not in traces:
            traces[sp["t"]] = {}
            order.append(sp["t"])
        # a retried stage keeps its first span (the hop as the message first met it)
        traces[sp["t"]].setdefault(sp["n"], (sp["s"], sp["e"]))
    whole = [traces[t] for t in order if all(n in traces[t] for n in NEEDED)]
    if last:
        whole = whole[-last:]
    print("  per hop, from the daemons' spans (%d whole traces of %d):" % (len(whole), len(traces)))
    if not whole:
        return
    for label, f in HOPS:
        v = sorted(f(s) for s in whole)
        print("    %-40s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms"
              % (label, pct(v, 50), pct(v, 90), pct(v, 99), v[-1]))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "report":
        report(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
