#!/usr/bin/env bash
# fmt.sh fix|check: clang-format-14 over every C source of the project (.clang-format).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:-check}
# Files deleted in the working tree but still in the index are skipped (not formattable).
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^build' |
    while IFS= read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done || true)
[ ${#files[@]} -gt 0 ] || exit 0
if [ "$mode" = fix ]; then
    clang-format-14 -i "${files[@]}"
else
    clang-format-14 --dry-run --Werror "${files[@]}"
    echo "format: ${#files[@]} files clean"
fi
