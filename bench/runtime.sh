#!/usr/bin/env bash
# bench/runtime.sh [PEER] — latency of wharf-runtime next to runc (or PEER, e.g. /usr/bin/crun).
#
# Operations, each one `hyperfine -N` invocation per round holding both runtimes, the order
# alternating from round to round (ROUNDS short rounds spread this machine's slow drifts over
# both; keep ROUNDS even so that each goes first as often):
#   run           run --bundle B ID                    process /bin/true: returns once it exited
#   create        create --bundle B --pid-file F ID    process sleep 3600 (prepare: delete -f)
#   start         start ID                             (prepare: delete -f, create)
#   state         state ID                             a running container
#   delete        delete ID                            (prepare: create, start /bin/true, wait
#                                                      until it is stopped)
#   delete_force  delete --force ID                    (prepare: create, start sleep 3600)
# Each runtime has its own --root and container ids. The bundles are `wharf unpack` of the
# busybox test image (hack/images.sh busybox), their config.json edited by jq (process.args,
# terminal false). Per operation: the median wall time of each runtime over every run of every
# round and the median CPU time (user+sys) per run (ms), and ratio = median(wharf-runtime) /
# median(peer): below 1 means wharf-runtime is faster. Timings on a shared machine are noisy;
# nothing here asserts on them.
# crun 1.8 refuses hybrid cgroups: with a crun peer on a hybrid host the whole benchmark (both
# runtimes) runs in a private mount namespace without /sys/fs/cgroup/unified (unshare -m).
# Runs itself under catatonit (a child subreaper for the detached container inits).
# Env:  ROUNDS=10 RUNS=5 WARMUP=1   QUICK=1: ROUNDS=2 RUNS=3 WARMUP=1 (well under a minute)
#       WHARF_RUNTIME (default bin/wharf-runtime, built by make build when missing)
# Needs root, hyperfine, jq, catatonit (unshare and umount for crun).
# Output: a table (hyperfine's output stays in .cache/bench/runtime/results), then the last line
#   RESULT runtime-bench run_ratio=.. create_ratio=.. start_ratio=.. state_ratio=.. delete_ratio=..
#          delete_force_ratio=.. under_test=wharf-runtime peer=runc
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=runtime-bench
need_root
need hyperfine hyperfine; need jq jq

UT=${WHARF_RUNTIME:-$WHARF_ROOT/bin/wharf-runtime}
if [ ! -x "$UT" ] && [ -z "${WHARF_RUNTIME:-}" ]; then make -s -C "$WHARF_ROOT" build >&2; fi
[ -x "$UT" ] || die "$UT is missing (make build)"
UT=$(cd "$(dirname "$UT")" && pwd)/$(basename "$UT")
PEER=${1:-/usr/sbin/runc}
case $PEER in */*) ;; *) PEER=$(command -v "$PEER") || die "no $1 on PATH";; esac
[ -x "$PEER" ] || die "not an executable: $PEER"
PEER=$(cd "$(dirname "$PEER")" && pwd)/$(basename "$PEER")

# crun 1.8 on a hybrid host: a private mount namespace where cgroup v1 is all there is
hybrid() { mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; }
LEGACY_VIEW=${WHARF_BENCH_LEGACY_VIEW:-0}
case $(basename "$PEER") in crun*) if hybrid; then LEGACY_VIEW=1; fi;; esac
if [ "$LEGACY_VIEW" = 1 ] && [ -z "${WHARF_BENCH_LEGACY_VIEW:-}" ]; then
  need unshare util-linux
  export WHARF_BENCH_LEGACY_VIEW=1
  exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec "$0" "$@"' "$(readlink -f "$0")" "$@"
fi
subreaper "$@"

if [ "${QUICK:-0}" = 1 ]; then ROUNDS=${ROUNDS:-2} RUNS=${RUNS:-3} WARMUP=${WARMUP:-1}
else ROUNDS=${ROUNDS:-10} RUNS=${RUNS:-5} WARMUP=${WARMUP:-1}; fi
# hyperfine -N splits its commands at blanks: keep every path free of them.
no_blank "$UT"; no_blank "$PEER"

BASE=$(cache_dir bench/runtime)
no_blank "$BASE"
RUN=$(mktemp -d "$BASE/run.XXXXXX")
RES=$BASE/results
rm -rf "$RES"; mkdir -p "$RES"
# Registered first, so run last (after every container is deleted).
at_exit 'umount_below "$RUN"; rm -rf "$RUN"'

# --- bundles -----------------------------------------------------------------------------------
"$WHARF_ROOT/hack/images.sh" busybox >/dev/null || die "hack/images.sh busybox failed"
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
IMG=$WHARF_ROOT/.cache/images/busybox
# crun 1.8 refuses an ociVersion without "1.0" ("unknown version specified"): for it, both
# runtimes get the bundle as 1.0.2 (nothing in it is newer).
VERSION_EDIT=
case $(basename "$PEER") in crun*) VERSION_EDIT=' | .ociVersion = "1.0.2"';; esac
# bundle NAME ARGS...: RUN/NAME, busybox with process.args ARGS and no terminal.
bundle() {
  local b=$RUN/$1; shift
  "$WHARF" -q unpack "oci:$IMG:latest" "$b"
  jq --args ".process.args = \$ARGS.positional | .process.terminal = false$VERSION_EDIT" "$@" < "$b/config.json" > "$b/config.json.new"
  mv "$b/config.json.new" "$b/config.json"
}
bundle bundle-true /bin/true
bundle bundle-sleep /bin/sleep 3600

# --- the two sides: ut (wharf-runtime) and peer, each its root, ids and prepare scripts --------
SIDES=(ut peer)
declare -A BIN=([ut]=$UT [peer]=$PEER)
declare -A NAME=([ut]=$(basename "$UT") [peer]=$(basename "$PEER"))
P=$RUN/prep
mkdir -p "$P"
for s in "${SIDES[@]}"; do
  mkdir -p "$RUN/root-$s"
  R="${BIN[$s]} --root $RUN/root-$s"
  printf '#!/bin/sh\n%s delete --force wb-%s-run >/dev/null 2>&1; exit 0\n' "$R" "$s" > "$P/$s-run"
  printf '#!/bin/sh\n%s delete --force wb-%s-c >/dev/null 2>&1; exit 0\n' "$R" "$s" > "$P/$s-create"
  cat > "$P/$s-start" <<E
#!/bin/sh
$R delete --force wb-$s-s >/dev/null 2>&1
exec $R create --bundle $RUN/bundle-sleep --pid-file $RUN/root-$s/s.pid wb-$s-s
E
  cat > "$P/$s-delete" <<E
#!/bin/sh
$R delete --force wb-$s-x >/dev/null 2>&1
$R create --bundle $RUN/bundle-true --pid-file $RUN/root-$s/x.pid wb-$s-x && $R start wb-$s-x || exit 1
i=0
while [ \$i -lt 500 ]; do
  $R state wb-$s-x 2>/dev/null | grep -q '"status": *"stopped"' && exit 0
  sleep 0.01; i=\$((i + 1))
done
echo "wb-$s-x did not stop" >&2; exit 1
E
  cat > "$P/$s-delete_force" <<E
#!/bin/sh
$R delete --force wb-$s-d >/dev/null 2>&1
$R create --bundle $RUN/bundle-sleep --pid-file $RUN/root-$s/d.pid wb-$s-d && exec $R start wb-$s-d
E
  chmod +x "$P"/*
done

# timed SIDE OP: the command hyperfine times.
timed() {
  local R="${BIN[$1]} --root $RUN/root-$1"
  case $2 in
    run) echo "$R run --bundle $RUN/bundle-true wb-$1-run" ;;
    create) echo "$R create --bundle $RUN/bundle-sleep --pid-file $RUN/root-$1/c.pid wb-$1-c" ;;
    start) echo "$R start wb-$1-s" ;;
    state) echo "$R state wb-$1-s" ;;
    delete) echo "$R delete wb-$1-x" ;;
    delete_force) echo "$R delete --force wb-$1-d" ;;
  esac
}

remove_containers() {
  local s id
  for s in "${SIDES[@]}"; do
    for id in $("${BIN[$s]}" --root "$RUN/root-$s" list -q 2>/dev/null); do
      "${BIN[$s]}" --root "$RUN/root-$s" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
}
at_exit remove_containers

# --- the rounds --------------------------------------------------------------------------------
OPS=(run create start state delete delete_force)
FAILED=0
say "under test: $UT; peer: $PEER; $ROUNDS rounds x $RUNS runs (+$WARMUP warm-up); cgroup v1 view: $LEGACY_VIEW"
for op in "${OPS[@]}"; do
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(ut peer); else order=(peer ut); fi
    args=(-N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$RES/$op-r$r.json")
    if [ "$op" != state ]; then for s in "${order[@]}"; do args+=(--prepare "$P/$s-$op"); done; fi
    for s in "${order[@]}"; do args+=(-n "$s" "$(timed "$s" "$op")"); done
    if [ "$op" = state ]; then
      for s in "${SIDES[@]}"; do
        { "$P/$s-start" && "${BIN[$s]}" --root "$RUN/root-$s" start "wb-$s-s"; } >/dev/null || warn "$s: no running container for state"
      done
    fi
    say "$op, round $r/$ROUNDS (${order[*]})"
    if ! hyperfine "${args[@]}" > "$RES/$op-r$r.txt" 2>&1; then
      warn "hyperfine failed for $op, round $r (left out):"; tail -5 "$RES/$op-r$r.txt" >&2
      rm -f "$RES/$op-r$r.json"; FAILED=$((FAILED + 1))
    fi
    remove_containers
  done
done

# --- the figures -------------------------------------------------------------------------------
# wall SIDE OP: the median of every timed run (ms);  cpu SIDE OP: the median over rounds of the
# mean user+sys time per run (ms).
wall() { cat "$RES/$2"-r*.json 2>/dev/null | jq -r --arg s "$1" '.results[] | select(.command == $s) | .times[] * 1000' | median; }
cpu() { cat "$RES/$2"-r*.json 2>/dev/null | jq -r --arg s "$1" '.results[] | select(.command == $s) | (.user + .system) * 1000' | median; }
num() { awk -v a="$1" 'BEGIN { if (a == "nan" || a == "") print "nan"; else printf "%.2f", a }'; }
printf '\n%-13s %14s %14s %7s %12s %12s   (ms; %s rounds x %s runs)\n' operation "${NAME[ut]:0:14}" "${NAME[peer]:0:14}" ratio "cpu (ut)" "cpu (peer)" "$ROUNDS" "$RUNS"
declare -A RATIO
for op in "${OPS[@]}"; do
  a=$(wall ut "$op") b=$(wall peer "$op")
  RATIO[$op]=$(ratio "$a" "$b")
  printf '%-13s %14s %14s %7s %12s %12s\n' "$op" "$(num "$a")" "$(num "$b")" "${RATIO[$op]}" "$(num "$(cpu ut "$op")")" "$(num "$(cpu peer "$op")")"
done
echo "ratio = ${NAME[ut]} / ${NAME[peer]}, below 1: ${NAME[ut]} is faster; hyperfine's output: $RES"
[ "$FAILED" = 0 ] || warn "$FAILED rounds failed and were left out"
result "runtime-bench run_ratio=${RATIO[run]} create_ratio=${RATIO[create]} start_ratio=${RATIO[start]} state_ratio=${RATIO[state]} delete_ratio=${RATIO[delete]} delete_force_ratio=${RATIO[delete_force]} under_test=${NAME[ut]} peer=${NAME[peer]}"
[ "$FAILED" = 0 ]
