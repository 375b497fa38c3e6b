#!/usr/bin/env bash
# deploy/grafana: the five dashboards are Grafana JSON (unique uids, every panel with a
# datasource and a query), every query parses as PromQL (`promtool check rules` over them as
# recording rules) and names only metrics the daemons export (metric_names.py).
# shellcheck source=tests/ops/ops_env.sh
source "$(dirname "$0")/ops_env.sh"
command -v promtool >/dev/null || { echo "promtool missing: run deploy/local/deps.sh" >&2; exit 1; }
dash=$root/deploy/grafana/dashboards
for name in overview ingest notify router business; do
    [[ -f "$dash/$name.json" ]] || { echo "missing dashboard $dash/$name.json" >&2; exit 1; }
done
"$OPS_PYTHON" - "$dash"/*.json <<'PY'
import json, sys
uids, bad = set(), []
def walk(f, panels):
    for p in panels:
        if p.get("type") == "row":
            walk(f, p.get("panels", []))
            continue
        t = p.get("targets") or []
        if not p.get("datasource") or not t or not all(x.get("expr") and x.get("refId") for x in t):
            bad.append(f"{f}: panel {p.get('title')!r} has no datasource or query")
        if "gridPos" not in p or "id" not in p:
            bad.append(f"{f}: panel {p.get('title')!r} has no gridPos or id")
for f in sys.argv[1:]:
    d = json.load(open(f))
    for k in ("uid", "title", "panels", "schemaVersion"):
        if k not in d:
            bad.append(f"{f}: no {k}")
    if d.get("uid") in uids:
        bad.append(f"{f}: uid {d.get('uid')} used twice")
    uids.add(d.get("uid"))
    ids = [p.get("id") for p in d.get("panels", [])]
    if len(ids) != len(set(ids)):
        bad.append(f"{f}: panel ids repeat")
    walk(f, d.get("panels", []))
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
args=()
for f in "$dash"/*.json; do args+=(--dashboards "$f"); done
"$OPS_PYTHON" "$root/tests/ops/metric_names.py" --root "$root" "${args[@]}" \
    --promql-rules "$scratch/dashboards.rules.yml"
promtool check rules "$scratch/dashboards.rules.yml"
echo "grafana_test: ok"
