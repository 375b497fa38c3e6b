# tls_lib.sh: what the TLS tests (redis_tls.sh, mongo_tls.sh) share; sourced, not run.
#   tls_setup NAME       a scratch directory in $dir, removed with every process in $pids at exit
#   free_port            a free loopback port
#   wait_port PORT [S]   waits up to S seconds (default 15) until PORT accepts connections
#   tls_certs NAME...    in $dir: a CA (ca.pem, ca.key) and, for each NAME, NAME.key and NAME.crt
#                        signed by it for IP 127.0.0.1 and DNS localhost
#   fail MESSAGE         prints FAIL: MESSAGE and exits 1
fail() { echo "FAIL: $*" >&2; exit 1; }

tls_setup() {
  dir=$(mktemp -d "/tmp/wa-$1-XXXXXX")
  pids=()
  trap tls_cleanup EXIT
}

tls_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  local i
  for i in $(seq $((${2:-15} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

tls_certs() {
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=wa test CA"
    for name in "$@"; do
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$name.ext" -out "$name.crt"
    done
  ) >"$dir/openssl.log" 2>&1 || fail "openssl: $(tail -5 "$dir/openssl.log")"
}
