#!/usr/bin/env bash
# docker-compose.yml: valid against the Compose specification (check-jsonschema's vendored
# compose-spec schema, offline) and the rules of check_compose.py (health checks, conditions,
# one-shot jobs, named volumes, Prometheus and Jaeger), whose self-test must catch each break.
# shellcheck source=tests/ops/ops_env.sh
source "$(dirname "$0")/ops_env.sh"
"$(dirname "$OPS_PYTHON")/check-jsonschema" --builtin-schema vendor.compose-spec \
    "$root/docker-compose.yml"
"$OPS_PYTHON" "$root/tests/ops/check_compose.py" "$root/docker-compose.yml" \
    "$root/deploy/prometheus/prometheus-compose.yml"
"$OPS_PYTHON" "$root/tests/ops/check_compose.py" --self-test "$root/docker-compose.yml" \
    "$root/deploy/prometheus/prometheus-compose.yml"
echo "compose_test: ok"
