#!/usr/bin/env bash
# deploy/prometheus: both scrape configurations and the rules pass `promtool check`, the rules'
# unit tests pass (`promtool test rules`), and every metric the rules query is one the daemons
# export (metric_names.py, whose own self-test runs first). promtool: Debian's prometheus package.
# shellcheck source=tests/ops/ops_env.sh
source "$(dirname "$0")/ops_env.sh"
command -v promtool >/dev/null || { echo "promtool missing: run deploy/local/deps.sh" >&2; exit 1; }
prom=$root/deploy/prometheus
promtool check config "$prom/prometheus.yml" "$prom/prometheus-compose.yml"
promtool check rules "$prom"/rules/*.yml
promtool test rules "$prom"/tests/*.yml
"$OPS_PYTHON" "$root/tests/ops/metric_names.py" --root "$root" --self-test
rules=()
for f in "$prom"/rules/*.yml; do rules+=(--rules "$f"); done
"$OPS_PYTHON" "$root/tests/ops/metric_names.py" --root "$root" "${rules[@]}"
# every daemon is scraped, under its own name as the job
for cfg in "$prom/prometheus.yml" "$prom/prometheus-compose.yml"; do
    for d in gateway ingest router notify analytics users; do
        grep -q "job_name: wa-$d\$" "$cfg" || { echo "$cfg: no job wa-$d" >&2; exit 1; }
    done
done
# every alert has at least one unit test
for a in $(grep -oP '^\s*- alert: \K\w+' "$prom"/rules/*.yml); do
    grep -qh "alertname: $a\$" "$prom"/tests/*.yml || { echo "alert $a has no promtool test" >&2; exit 1; }
done
echo "prometheus_test: ok"
