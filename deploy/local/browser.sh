#!/usr/bin/env bash
# browser.sh: the driver of the headless-browser tests (the wa-analytics dashboard test):
# playwright-core from npm, installed once into $WA_CACHE_DIR/npm/playwright-core-<version>
# (idempotent, locked against concurrent runs). The browser is Debian's chromium (deps.sh);
# playwright-core never downloads one. Prints the node_modules directory to use as NODE_PATH.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PLAYWRIGHT_CORE_VERSION=1.65.1
dir=$WA_CACHE_DIR/npm/playwright-core-$PLAYWRIGHT_CORE_VERSION
if [[ ! -f $dir/node_modules/playwright-core/package.json ]]; then
  wa_require_cmd npm
  wa_lock "$dir.lock" 600 "the playwright-core installation"
  if [[ ! -f $dir/node_modules/playwright-core/package.json ]]; then
    mkdir -p "$dir"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-audit --no-fund \
      --loglevel=error "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  fi
fi
echo "$dir/node_modules"
