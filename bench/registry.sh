#!/usr/bin/env bash
# bench/registry.sh — wharf's registry (`wharf serve`) next to CNCF distribution 2.8
# (docker-registry, started by hack/start-distribution.sh), side by side in one run. Each
# repetition starts both on fresh, empty roots, runs the phases of bench/regbench against one
# then the other (wharf first in odd repetitions, distribution first in even ones), and stops
# them:
#   push-big-1, pull-big-1     one SIZE_MB blob pushed (POST, streamed PATCH, PUT), pulled; 1 client
#   push-big-16                its 16 slices, each a blob, pushed by CLIENTS clients
#   pull-big-16                the whole blob pulled by CLIENTS clients at once
#   push-small-1, -16          SMALL_N images (a SMALL_KB KiB layer, a config, a manifest by tag;
#                              HEAD before each blob) pushed by 1, by CLIENTS clients
#   pull-small-1, -16          SMALL_N images pulled (manifest by tag, config, layer, all verified)
#   head-tagged-16             HEADs of every blob of the repository holding SMALL_N tags
#   head-empty-16              as many HEADs of the big blob in a repository without manifests
# and prints the medians over REPS (MB/s or op/s), the ratios wharf / distribution (above 1:
# wharf is faster) and each server's CPU time and peak RSS (VmHWM, from /proc of its pid).
#
# Usage: bench/registry.sh   (-h: this text)
# Env:   SIZE_MB (1024) SMALL_N (1000) SMALL_KB (100) CLIENTS (16) REPS (2; even: each server
#        goes first as often)   QUICK=1: SIZE_MB=64 SMALL_N=50 REPS=1 unless set (under a minute)
#        WHARF (default bin/wharf)   WHARF_PORT (5600) DIST_PORT (5601), on 127.0.0.1
#        WHARF_LOG_LEVEL (info: an access log line per request, as docker-registry writes)
#        VERIFY=1: hash every pulled big blob too (the client then competes harder for the CPUs)
#        WORK (default .cache/bench/registry): the test data (generated once per SIZE_MB,
#        SMALL_N, SMALL_KB), regbench, the servers' roots and logs (roots removed after each
#        repetition) and the rows of each run (results/rows-*.jsonl)
# Needs go, curl, catatonit, docker-registry.
# Last line: RESULT registry-bench push_big_ratio=.. pull_big_ratio=.. push_big16_ratio=..
#            pull_big16_ratio=.. small_push_ratio=.. small_pull_ratio=.. head_ratio=..
#            head_empty_ratio=.. ut_peak_rss_mb=.. peer_peak_rss_mb=..
#            (small_* and head_ratio: the CLIENTS-client phases; ut = wharf, peer = distribution)
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
[ $# -eq 0 ] || { usage >&2; exit 2; }
# docker-registry is started detached: under a subreaper it is reaped when stopped (this
# machine's PID 1 reaps no orphans).
subreaper "$@"
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=registry-bench
need go golang-go; need curl curl; need docker-registry docker-registry
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
WHARF=$(cd "$(dirname "$WHARF")" && pwd)/$(basename "$WHARF")
"$WHARF" serve --help >/dev/null 2>&1 || die "$WHARF has no serve command"
if [ "${QUICK:-0}" = 1 ]; then SIZE_MB=${SIZE_MB:-64} SMALL_N=${SMALL_N:-50} REPS=${REPS:-1}; fi
SIZE_MB=${SIZE_MB:-1024} SMALL_N=${SMALL_N:-1000} SMALL_KB=${SMALL_KB:-100} CLIENTS=${CLIENTS:-16} REPS=${REPS:-2}
for v in SIZE_MB SMALL_N SMALL_KB CLIENTS REPS; do
  case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive number: ${!v}";; esac
done
WPORT=${WHARF_PORT:-5600} DPORT=${DIST_PORT:-5601}
WURL=http://127.0.0.1:$WPORT DURL=http://127.0.0.1:$DPORT
for u in "$WURL" "$DURL"; do
  ! curl -s -o /dev/null --max-time 2 "$u/v2/" || die "something already answers on $u (set WHARF_PORT / DIST_PORT)"
done
WORK=${WORK:-$(cache_dir bench/registry)}
mkdir -p "$WORK/results"
WORK=$(cd "$WORK" && pwd)

# regbench, rebuilt when its sources change
RB=$WORK/regbench
if [ ! -x "$RB" ] || [ -n "$(find "$WHARF_ROOT/bench/regbench" -name '*.go' -newer "$RB" | head -1)" ]; then
  say "building bench/regbench"
  (cd "$WHARF_ROOT" && go build -o "$RB.tmp" ./bench/regbench) || die "go build ./bench/regbench failed"
  mv "$RB.tmp" "$RB"
fi
DATA=$WORK/data-${SIZE_MB}m-${SMALL_N}x${SMALL_KB}k
"$RB" gen -dir "$DATA" -size-mb "$SIZE_MB" -small-n "$SMALL_N" -small-kb "$SMALL_KB" || die "regbench gen failed"

RUN=$WORK/run ROWS=$WORK/results/rows-$(date +%Y%m%d-%H%M%S).jsonl
WPID='' DPID=''
stop_servers() {
  if [ -n "$WPID" ]; then stop_pid "$WPID" 10; wait "$WPID" 2>/dev/null || true; WPID=; fi
  if [ -n "$DPID" ]; then stop_pid "$DPID" 10; DPID=; fi
  rm -rf "$RUN/wharf-root" "$RUN/dist/data"
}
at_exit stop_servers
start_servers() {
  rm -rf "$RUN/wharf-root"
  mkdir -p "$RUN"
  WHARF_REGISTRY_LOG_LEVEL=${WHARF_LOG_LEVEL:-info} "$WHARF" serve --addr "127.0.0.1:$WPORT" --root "$RUN/wharf-root" \
    >> "$RUN/wharf.log" 2>&1 < /dev/null &
  WPID=$!
  local i
  for ((i = 0; i < 200; i++)); do
    curl -s -o /dev/null --max-time 1 "$WURL/v2/" && break
    kill -0 "$WPID" 2>/dev/null || { tail -5 "$RUN/wharf.log" >&2; die "wharf serve exited; see $RUN/wharf.log"; }
    sleep 0.05
  done
  curl -s -o /dev/null --max-time 1 "$WURL/v2/" || die "wharf serve did not answer on $WURL"
  "$WHARF_ROOT/hack/start-distribution.sh" "$DPORT" "$RUN/dist" > /dev/null || die "hack/start-distribution.sh failed"
  DPID=$(cat "$RUN/dist/pid")
}

say "$("$WHARF" version 2>/dev/null | head -1) against $(docker-registry --version 2>/dev/null | awk '{print $1, $3}'): ${SIZE_MB} MiB, ${SMALL_N} x ${SMALL_KB} KiB, ${CLIENTS} clients, ${REPS} reps"
mkdir -p "$RUN/dist"
: > "$RUN/wharf.log"; : > "$RUN/dist/registry.log"   # this run's logs only
VERIFY_FLAG=()
[ "${VERIFY:-0}" = 1 ] && VERIFY_FLAG=(-verify)
for ((r = 1; r <= REPS; r++)); do
  start_servers
  "$RB" run -dir "$DATA" -rep "$r" -c "$CLIENTS" "${VERIFY_FLAG[@]}" -out "$ROWS" \
    -target "wharf=$WURL,$WPID" -target "distribution=$DURL,$DPID" || die "regbench run failed"
  stop_servers
done

rc=0
out=$("$RB" report -ut wharf -peer distribution "$ROWS") || rc=$?
[ -n "$out" ] || die "regbench report failed"
echo
printf '%s\n' "$out" | sed '$d'
echo "rows: $ROWS; server logs: $RUN/wharf.log, $RUN/dist/registry.log"
result "registry-bench $(printf '%s\n' "$out" | tail -1)"
exit "$rc"
