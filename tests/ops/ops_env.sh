# Sourced by the tests in tests/ops: the cached tools of deploy/local/ops-tools.sh (installed by
# `make test` before ctest; nothing is downloaded here), a scratch directory removed on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$root/deploy/local/ops-tools.sh" --print)"
for tool in "$KUSTOMIZE" "$OPS_PYTHON"; do
    [[ -x "$tool" ]] || { echo "missing $tool: run deploy/local/ops-tools.sh" >&2; exit 1; }
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
