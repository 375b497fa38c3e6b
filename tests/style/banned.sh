#!/usr/bin/env bash
# banned.sh ROOT: fails when C sources under libs/ services/ tools/ tests/ call a banned function
# (docs/style.md: strcpy strcat sprintf vsprintf gets strtok atoi atol) or use // comments.
set -euo pipefail
root=${1:-.}
cd "$root"
status=0
# Files deleted in the working tree but still in the index are skipped: grep would fail on them
# (exit 2) and hide real hits.
files=$(git ls-files -co --exclude-standard -- 'libs/*.[ch]' 'services/*.[ch]' 'tools/*.[ch]' 'tests/*.[ch]' 2>/dev/null |
    while IFS= read -r f; do if [ -e "$f" ]; then echo "$f"; fi; done || true)
[ -n "$files" ] || { echo "banned: no sources found"; exit 1; }
# shellcheck disable=SC2086
if hits=$(grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)[[:space:]]*\(' $files); then
    echo "banned functions used:"; echo "$hits"; status=1
fi
# shellcheck disable=SC2086
if hits=$(grep -nE '^[[:space:]]*//' $files); then
    echo "// comments (use /* */):"; echo "$hits"; status=1
fi
n=$(echo "$files" | wc -l)
[ $status -eq 0 ] && echo "banned: $n files clean"
exit $status
