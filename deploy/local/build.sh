#!/usr/bin/env bash
# build.sh run|test [TARGET...]: configure and build one of the two build trees (every target,
# or only the ones named, e.g. wa-infra for the infrastructure scripts).
#   run  -> build/run  (RelWithDebInfo, used by make run and make bench)
#   test -> build/test (ASan+UBSan, used by make test)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kind=${1:-run}
shift || true
"$root/deploy/local/deps.sh"
case "$kind" in
run) dir="$root/build/run"; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWA_SANITIZE=OFF) ;;
test) dir="$root/build/test"; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWA_SANITIZE=ON) ;;
*) echo "build.sh: unknown build kind '$kind' (run|test)" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$root" -B "$dir" -G Ninja "${opts[@]}" >/dev/null
fi
ninja -C "$dir" -j"$(nproc)" "$@"
