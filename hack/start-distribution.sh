#!/usr/bin/env bash
# hack/start-distribution.sh PORT DIR — starts CNCF distribution 2.8 (Debian's docker-registry),
# the peer registry of wharf's tests and benchmarks, in the background on 127.0.0.1:PORT: a
# filesystem store in DIR/data (emptied first unless KEEP=1), deletes enabled, an in-memory
# blob descriptor cache, a fixed upload secret (DIR/http.secret, so upload sessions survive a
# restart), its log in DIR/registry.log. Returns once /v2/ answers; the pid is in DIR/pid.
# Stop it with: kill "$(cat DIR/pid)".
# Env: REGISTRY_BIN (default docker-registry), LOGLEVEL (default warn), KEEP=1
# Last line: RESULT start-distribution pid=N url=http://127.0.0.1:PORT dir=DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
[ $# -eq 2 ] || die "usage: start-distribution.sh PORT DIR"
RESULT_NAME=start-distribution
PORT=$1
case $PORT in ''|*[!0-9]*) die "PORT must be a number: $PORT";; esac
BIN=${REGISTRY_BIN:-docker-registry}
need "$BIN" docker-registry; need curl curl
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
URL=http://127.0.0.1:$PORT
! curl -s -o /dev/null --max-time 2 "$URL/v2/" || die "something already answers on $URL"
[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR/data"
mkdir -p "$DIR/data"
[ -s "$DIR/http.secret" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$DIR/http.secret"
cat > "$DIR/config.yml" <<EOF
version: 0.1
log:
  level: ${LOGLEVEL:-warn}
  formatter: text
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$PORT
  secret: $(cat "$DIR/http.secret")
EOF
# distribution 2.8's s3 driver panics on AWS_CA_BUNDLE; this one stores on disk, but keep the
# environment the same for every start.
env -u AWS_CA_BUNDLE setsid "$BIN" serve "$DIR/config.yml" >> "$DIR/registry.log" 2>&1 < /dev/null &
pid=$!
echo "$pid" > "$DIR/pid"
for _ in $(seq 1 200); do
  curl -s -o /dev/null --max-time 1 "$URL/v2/" && break
  kill -0 "$pid" 2>/dev/null || { tail -5 "$DIR/registry.log" >&2; die "docker-registry exited; see $DIR/registry.log"; }
  sleep 0.05
done
curl -s -o /dev/null --max-time 1 "$URL/v2/" || { kill "$pid"; die "docker-registry did not answer on $URL"; }
say "$("$BIN" --version 2>/dev/null | awk '{print $1, $3}') pid $pid on $URL, store $DIR/data"
result "start-distribution pid=$pid url=$URL dir=$DIR"
