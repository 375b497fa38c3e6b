#!/usr/bin/env bash
# Installs the Debian packages the project builds and runs with, only when some are missing.
#   deps.sh            check, install what is missing
#   deps.sh --check    check only; exit 1 (listing them) when packages are missing
# Reads: WA_CACHE_DIR (apt log lands in $WA_CACHE_DIR/logs/apt.log),
#        WA_APT_LOCK_TIMEOUT (seconds to wait for another apt/dpkg to finish, default 900).
# prometheus brings promtool (tests/ops) and the server `make run` starts on 9090; valgrind the
# instruction counts of deploy/local/bench.d/15-ingest-cost.sh; stunnel4 the
# TLS tunnel of tests/integration/redis_tls.sh (Redis over TLS, docs/operations.md).
# Go is not installed from Debian (bookworm's is too old): a Go >= 1.22 must already be in PATH.
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libhiredis-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
  libmongoc-dev libbson-dev libssl-dev libcmocka-dev libqrencode-dev zlib1g-dev
  libcjose-dev
  clang clang-format-14 libclang-rt-14-dev
  redis-server stunnel4 openjdk-17-jre-headless maven prometheus
  curl python3 openssl valgrind
  chromium
  nodejs
)
APT_LOCK_TIMEOUT=${WA_APT_LOCK_TIMEOUT:-900}
APT_LOG=$WA_CACHE_DIR/logs/apt.log
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)

check_only=0
case "${1:-}" in
  "") ;;
  --check) check_only=1 ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

missing_packages() {
  local installed
  # one dpkg-query for all names; unknown packages only produce stderr noise
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  local p
  for p in "${PACKAGES[@]}"; do
    grep -qx "$p installed" <<<"$installed" || printf '%s\n' "$p"
  done
}

check_go() {
  command -v go >/dev/null 2>&1 || [[ -x /usr/local/go/bin/go ]] || wa_die "'go' not found in PATH (nor /usr/local/go/bin/go): install Go >= 1.22 (needed to build FerretDB); it is not taken from Debian"
}

# lock_holder: prints the first apt/dpkg lock file another process holds. apt and dpkg use
# fcntl locks, so the probe tries one (non-blocking, released at once) with python3; without
# python3 it looks the files up in /proc/locks (which some sandboxes leave incomplete).
# Unreadable lock files (not root) are skipped: apt-get's own DPkg::Lock::Timeout still waits.
lock_holder() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "${APT_LOCKS[@]}" <<'PY'
import fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(path)
        sys.exit(0)
    finally:
        os.close(fd)
sys.exit(1)
PY
    return
  fi
  local f inode
  for f in "${APT_LOCKS[@]}"; do
    [[ -e "$f" ]] || continue
    inode=$(stat -c %i "$f") || continue
    if grep -q ":$inode " /proc/locks 2>/dev/null; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  return 1
}

wait_for_apt_locks() {
  local deadline=$((SECONDS + APT_LOCK_TIMEOUT)) held said=0
  while held=$(lock_holder); do
    if ((!said)); then
      wa_log "deps: another apt/dpkg holds $held; waiting up to ${APT_LOCK_TIMEOUT}s (WA_APT_LOCK_TIMEOUT)"
      said=1
    fi
    ((SECONDS < deadline)) || wa_die "deps: $held still locked after ${APT_LOCK_TIMEOUT}s; is an apt-get or unattended-upgrade stuck? (ps aux | grep -E 'apt|dpkg')"
    sleep 2
  done
}

main() {
  local missing sudo=()
  check_go
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    wa_log "deps: all ${#PACKAGES[@]} Debian packages present"
    return 0
  fi
  if ((check_only)); then
    wa_die "deps: missing Debian packages: ${missing[*]} (run deploy/local/deps.sh)"
  fi
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || wa_die "deps: missing ${missing[*]}; not root and no sudo to install them"
    sudo=(sudo)
  fi
  mkdir -p "$(dirname "$APT_LOG")"
  wa_log "deps: installing ${missing[*]} (log $APT_LOG)"
  local apt_opts=(-o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" -o Dpkg::Use-Pty=0)
  export DEBIAN_FRONTEND=noninteractive
  wait_for_apt_locks
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update >>"$APT_LOG" 2>&1; then
    wa_die "deps: apt-get update failed" "$APT_LOG"
  fi
  wait_for_apt_locks
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
    --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1; then
    wa_die "deps: apt-get install ${missing[*]} failed" "$APT_LOG"
  fi
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} == 0)) || wa_die "deps: still missing after apt-get install: ${missing[*]}" "$APT_LOG"
  wa_log "deps: installed"
}

main
