#!/usr/bin/env python3
"""metric_names.py: every metric a Prometheus rule or a Grafana dashboard queries is one the
daemons export.

Exported names come from the C sources (libs/, services/): the second argument of
wa_metrics_counter/gauge/histogram, or of a macro in the same file that expands to one of them
(services' health.c tables). With --scrape URL... the names are also read from running
daemons' /metrics (make run) and must agree with the sources. Histograms add _bucket, _sum and
_count; Prometheus adds up, scrape_* and ALERTS.

Queried names come from every `expr` of the rule files (YAML) and every target `expr` of the
dashboards (JSON), by a small PromQL tokenizer: strings, label matchers, ranges, numbers and
Grafana variables are removed; an identifier followed by "(", "by" or "without" is a function or
aggregation; the label lists after by/without/on/ignoring/group_left/group_right are skipped.

  metric_names.py --root DIR [--rules FILE]... [--dashboards FILE]... [--scrape URL]...
                  [--promql-rules OUT]
--promql-rules writes every dashboard expression (Grafana variables replaced) as a recording
rule into OUT, so `promtool check rules OUT` parses them offline.
  metric_names.py --root DIR --self-test
Exit 0 when every name is known, 1 (listing file, expression and name) otherwise.
"""
import argparse
import json
import pathlib
import re
import sys
import urllib.request

import yaml

KINDS = {"counter", "gauge", "histogram"}
BUILTIN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped",
           "scrape_samples_post_metric_relabeling", "scrape_series_added"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "offset", "bool", "inf", "nan", "atan2"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return src


def exported_from_sources(root):
    """Returns {name: kind} registered in libs/ and services/ (tests and tools excluded)."""
    names = {}
    call = r"\(\s*(?:[^,()\"]|\([^()]*\))+,\s*\"([a-z_:][a-z0-9_:]*)\""  # f(registry, "name"
    for top in ("libs", "services"):
        for path in sorted((root / top).rglob("*.c")):
            if "libs/metrics" in path.as_posix():
                continue
            src = strip_comments(path.read_text(errors="replace"))
            funcs = {f"wa_metrics_{k}": k for k in KINDS}
            for m in re.finditer(r"#define\s+(\w+)\s*\([^)]*\)(?:[^\n]|\\\n)*?wa_metrics_(counter|gauge|histogram)\(", src):
                funcs[m.group(1)] = m.group(2)
            for fn, kind in funcs.items():
                for m in re.finditer(r"\b" + re.escape(fn) + call, src):
                    prev = names.setdefault(m.group(1), kind)
                    if prev != kind:
                        raise SystemExit(f"{path}: {m.group(1)} registered as {prev} and {kind}")
    return names


def exported_from_scrape(urls):
    """Returns {name: kind} from the # TYPE lines of each URL's Prometheus text."""
    names = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode().splitlines():
                m = re.match(r"# TYPE (\S+) (\S+)", line)
                if m:
                    names[m.group(1)] = m.group(2)
    return names


def series_names(exported):
    """All sample names the exported families produce."""
    out = set(BUILTIN)
    for name, kind in exported.items():
        out.add(name)
        if kind == "histogram":
            out.update({name + "_bucket", name + "_sum", name + "_count"})
    return out


def queried(expr):
    """Returns the metric names an expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1", e)          # Grafana variables
    e = re.sub(r"\{[^}]*\}", " ", e)                    # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                   # ranges and subqueries
    e = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?", " ", e)
    toks = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*|\(|\)|[^\sA-Za-z0-9_:()]+", e)
    names, i = [], 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t.lower() in LABEL_LIST_KEYWORDS:
            if nxt == "(":
                j = toks.index(")", i + 1)
                i = j + 1
                continue
        elif (re.match(r"[A-Za-z_:]", t) and nxt != "(" and t.lower() not in KEYWORDS
              and nxt.lower() not in ("by", "without")):  # "sum by (job) (...)"
            names.append(t)
        i += 1
    return names


def rule_exprs(path):
    doc = yaml.safe_load(path.read_text())
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            yield r.get("alert") or r.get("record"), r["expr"]


def dashboard_exprs(path):
    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    yield p.get("title", "?"), t["expr"]
            yield from walk(p.get("panels", []))
    doc = json.loads(path.read_text())
    yield from walk(doc.get("panels", []))
    for v in doc.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query" and isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str):
            m = re.match(r"label_values\((.*),\s*\w+\)\s*$", q)
            yield "variable " + v.get("name", "?"), m.group(1) if m else q


def check(known, sources):
    """sources: [(file, where, expr)]. Returns the error lines."""
    errors, count = [], 0
    for f, where, expr in sources:
        for n in queried(expr):
            count += 1
            if n not in known:
                errors.append(f"{f}: {where}: '{n}' is not exported by any daemon")
    return errors, count


def self_test(known):
    cases = {
        'sum by (job, topic) (rate(wa_kafka_produced_total{topic=~".*dlq"}[5m])) > 0': [],
        'wa_http_requests_total{status=~"5.."} / on (job) group_left wa_ready': [],
        'histogram_quantile(0.99, sum by (le) (rate(wa_ingest_ack_seconds_bucket[$__rate_interval])))': [],
        'rate(wa_ingest_nonexistent_total[5m])': ["wa_ingest_nonexistent_total"],
        'wa_ready_bucket': ["wa_ready_bucket"],
        'max(wa_notify_token_stopped) * 1e3 > bool 0 unless wa_typo': ["wa_typo"],
    }
    bad = 0
    for expr, want in cases.items():
        got = [n for n in queried(expr) if n not in known]
        if got != want:
            print(f"self-test: {expr!r}: unknown {got}, want {want}", file=sys.stderr)
            bad += 1
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, type=pathlib.Path)
    ap.add_argument("--rules", action="append", default=[], type=pathlib.Path)
    ap.add_argument("--dashboards", action="append", default=[], type=pathlib.Path)
    ap.add_argument("--scrape", action="append", default=[])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--promql-rules", type=pathlib.Path)
    a = ap.parse_args()

    exported = exported_from_sources(a.root)
    if len(exported) < 40 or "wa_http_requests_total" not in exported:
        print(f"found only {len(exported)} metric families in the sources: extractor broken?",
              file=sys.stderr)
        return 1
    errors = []
    if a.scrape:
        scraped = exported_from_scrape(a.scrape)
        for n, kind in sorted(scraped.items()):
            if n not in exported:
                errors.append(f"scraped {n} ({kind}) is not found in the sources")
            elif exported[n] != kind:
                errors.append(f"scraped {n} is a {kind}, the sources register a {exported[n]}")
        exported.update(scraped)
    known = series_names(exported)
    if a.self_test:
        return 1 if self_test(known) else 0
    sources = [(str(p), w, e) for p in a.rules for w, e in rule_exprs(p)]
    sources += [(str(p), w, e) for p in a.dashboards for w, e in dashboard_exprs(p)]
    if a.promql_rules:
        rules = []
        for p in a.dashboards:
            for i, (where, expr) in enumerate(dashboard_exprs(p)):
                e = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
                rules.append({"record": f"dashboard:{p.stem}:{i}", "expr": e})
        a.promql_rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    errs, count = check(known, sources)
    errors += errs
    for e in errors:
        print(e, file=sys.stderr)
    print(f"metric_names: {count} references in {len(sources)} expressions, "
          f"{len(exported)} exported families, {len(errors)} unknown")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
