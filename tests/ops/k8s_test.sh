#!/usr/bin/env bash
# k8s/: both overlays render with kustomize, and every object passes the schema and policy
# checks of check_k8s.py; the checker itself must catch each deliberate break (--self-test).
# shellcheck source=tests/ops/ops_env.sh
source "$(dirname "$0")/ops_env.sh"
for overlay in local production; do
    "$KUSTOMIZE" build "$root/k8s/overlays/$overlay" >"$scratch/$overlay.yaml"
    "$OPS_PYTHON" "$root/tests/ops/check_k8s.py" "$scratch/$overlay.yaml" \
        --router-rules "$root/deploy/local/router-rules.json"
done
"$OPS_PYTHON" "$root/tests/ops/check_k8s.py" --self-test "$scratch/production.yaml"
