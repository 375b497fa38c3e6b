#!/usr/bin/env bash
# phone_oracle.sh DRIVER: runs phone_oracle.py with the Python of deploy/local/ops-tools.sh's
# venv (phonenumbers pinned there; `make test` installs it before ctest; nothing is downloaded
# here).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
eval "$("$root/deploy/local/ops-tools.sh" --print)"
[[ -x "$OPS_PYTHON" ]] || { echo "missing $OPS_PYTHON: run deploy/local/ops-tools.sh" >&2; exit 1; }
exec "$OPS_PYTHON" "$root/tests/unit/users/phone_oracle.py" "$1" "$root/services/users/src/phone_table.c"
