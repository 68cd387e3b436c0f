#!/usr/bin/env bash
# hack/test-bench.sh [NAME ...] — runs every benchmark bench/*.sh (or bench/NAME.sh for each
# NAME) in its quick mode, QUICK=1, one after another, each under a timeout, and prints each
# one's last line and how long it took. It fails when a benchmark exits non-zero (or times out)
# or when the last line of its standard output is not a RESULT line with at least one
# *ratio*=NUMBER field. The figures are printed, never judged: timing on a busy machine is
# no test assertion.
# Env:  TIMEOUT (seconds per benchmark, default 300; TERM then, KILL 30 s later)
#       WHARF and the benchmarks' own variables are passed on as they are.
# Logs: .cache/bench/test-bench/NAME.out and NAME.err (each run's stdout and stderr).
# Last line: RESULT test-bench pass=N fail=N seconds=S
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
need timeout coreutils
TIMEOUT=${TIMEOUT:-300}
case $TIMEOUT in ''|*[!0-9]*|0) die "TIMEOUT must be a positive number of seconds: $TIMEOUT";; esac
benches=()
if [ $# -eq 0 ]; then
  for b in "$WHARF_ROOT"/bench/*.sh; do benches+=("$b"); done
else
  for n in "$@"; do
    n=${n#bench/}; n=${n%.sh}
    [ -f "$WHARF_ROOT/bench/$n.sh" ] || die "no benchmark bench/$n.sh"
    benches+=("$WHARF_ROOT/bench/$n.sh")
  done
fi
[ ${#benches[@]} -gt 0 ] || die "no benchmark in bench/"
LOGS=$(cache_dir bench/test-bench)

# An exact number: what a ratio must hold (nan, empty or error= is no figure).
NUM='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'
pass=0 fail=0 t0=$SECONDS
failed=()
for b in "${benches[@]}"; do
  n=$(basename "$b" .sh)
  say "bench/$n.sh (QUICK=1, timeout ${TIMEOUT}s)"
  s=$SECONDS rc=0
  QUICK=1 timeout -k 30 "$TIMEOUT" "$b" < /dev/null > "$LOGS/$n.out" 2> "$LOGS/$n.err" || rc=$?
  d=$((SECONDS - s))
  last=$(tail -n 1 "$LOGS/$n.out")
  why=
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then why="timed out after ${TIMEOUT}s (exit $rc)"
  elif [ "$rc" != 0 ]; then why="exit $rc"
  elif ! grep -Eq '^RESULT [^ =]+( [^ ]+)*$' <<<"$last"; then why="its last line is not a RESULT line"
  elif ! grep -Eq " [^ =]*ratio[^ =]*=$NUM( |$)" <<<"$last"; then why="its RESULT line has no *ratio*=NUMBER field"
  fi
  printf 'bench/%-16s %4ss  %s\n' "$n.sh" "$d" "${last:-(no output)}"
  if [ -z "$why" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)) failed+=("$n")
    printf 'FAIL bench/%s.sh: %s; the end of %s:\n' "$n" "$why" "$LOGS/$n.err"
    tail -n 20 "$LOGS/$n.err" | sed 's/^/    /'
  fi
done
[ "$fail" = 0 ] || warn "failed: ${failed[*]}"
result "test-bench pass=$pass fail=$fail seconds=$((SECONDS - t0))"
[ "$fail" = 0 ]
