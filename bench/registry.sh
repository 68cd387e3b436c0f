#!/usr/bin/env bash
# bench/registry.sh — wharf's registry next to CNCF distribution 2.8, side by side in one run.
#
# Builds ./bin/wharf if needed, starts `wharf serve` and docker-registry (through
# ../shared/peers/registry/start-distribution.sh) on fresh roots, runs
# ../shared/peers/registry/bench.sh against both, prints its table and RESULT line (ratios are
# wharf / distribution: above 1 = wharf is faster), then stops both servers.
#
# Env: SIZE_MB SMALL_N REPS PHASES ... passed to bench.sh (quick run: SIZE_MB=64 SMALL_N=100 REPS=1)
#      WHARF_PORT=5200 DIST_PORT=5201   BENCH_WORK=/tmp/wharf-bench-registry (the two servers' roots)
#      WHARF_SHARED=../shared   (the peer scripts keep their own WORK directories and caches)
#      WHARF_LOG_LEVEL=info (the registry's access log goes to WORK/wharf.log)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
P=$SHARED/peers/registry
WORK=${BENCH_WORK:-/tmp/wharf-bench-registry}
unset BENCH_WORK
WPORT=${WHARF_PORT:-5200}; DPORT=${DIST_PORT:-5201}
mkdir -p "$WORK"
[ -x bin/wharf ] || make -s build
bin/wharf serve --help >/dev/null 2>&1 || { echo "bench/registry.sh: bin/wharf has no serve command" >&2; exit 2; }

WPID=
cleanup() {
  [ -n "$WPID" ] && kill "$WPID" 2>/dev/null && wait "$WPID" 2>/dev/null
  [ -f "$WORK/dist/pid" ] && kill "$(cat "$WORK/dist/pid")" 2>/dev/null
  true
}
trap cleanup EXIT

rm -rf "$WORK/wharf-root"
WHARF_REGISTRY_LOG_LEVEL=${WHARF_LOG_LEVEL:-info} bin/wharf serve --addr "127.0.0.1:$WPORT" --root "$WORK/wharf-root" > "$WORK/wharf.log" 2>&1 &
WPID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$WPORT/v2/" && break; sleep 0.1; done
FRESH=1 env -u WORK "$P/start-distribution.sh" "$DPORT" "$WORK/dist" >&2
PID_UNDER_TEST=$WPID PID_PEER=$(cat "$WORK/dist/pid") \
  env -u WORK "$P/bench.sh" "http://127.0.0.1:$WPORT" "http://127.0.0.1:$DPORT"
