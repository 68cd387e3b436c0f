#!/usr/bin/env bash
# bench/client.sh — times `wharf copy` against `skopeo copy` between a registry and an OCI image
# layout, both ways: the IMAGE image of hack/images.sh (bookworm: four gzip layers) and a
# single-layer image of SIZE_MB incompressible bytes (bench/clientimg). Both tools in one
# `hyperfine -N` run per case (wharf's runs, then skopeo's), each command run once untimed
# first. Pulls go to a destination removed before each run; pushes go to a registry emptied
# and restarted before each run (so neither tool finds a blob there, and skopeo's blob-info
# cache cannot mount from an earlier run), both outside the timing.
#
# Usage: bench/client.sh   (-h: this text)
# Env:   WHARF (default bin/wharf)  RUNS (default 5)  SIZE_MB (default 1024)  IMAGE (default
#        bookworm)   QUICK=1: IMAGE=busybox SIZE_MB=32 RUNS=2 unless set
#        REGISTRY distribution (default: docker-registry 2.8 through hack/start-distribution.sh)
#        or wharf (`wharf serve`)   PORT (default 5711; 127.0.0.1 only)
#        WORK (default .cache/bench/client: the big image is cached there, by size)
# Needs root, hyperfine, skopeo, jq, curl, go, catatonit, docker-registry.
# Last line: RESULT client-bench registry=.. image=.. size_mb=.. pull_IMAGE_ratio=.. pull_big_ratio=..
#            push_IMAGE_ratio=.. push_big_ratio=.. plus each median in ms (ratio of medians,
#            wharf / skopeo: below 1 means wharf is faster; the goal is ≤ 0.5)
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
[ $# -eq 0 ] || { usage >&2; exit 2; }
need_root
# The registries are started detached: under a subreaper they are reaped when stopped (this
# machine's PID 1 reaps no orphans).
subreaper "$@"
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=client-bench
need hyperfine hyperfine; need skopeo skopeo; need jq jq; need curl curl; need go golang-go
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
WHARF=$(cd "$(dirname "$WHARF")" && pwd)/$(basename "$WHARF")
if [ "${QUICK:-0}" = 1 ]; then RUNS=${RUNS:-2} SIZE_MB=${SIZE_MB:-32} IMAGE=${IMAGE:-busybox}
else RUNS=${RUNS:-5} SIZE_MB=${SIZE_MB:-1024} IMAGE=${IMAGE:-bookworm}; fi
case $SIZE_MB in ''|*[!0-9]*|0) die "SIZE_MB must be a positive number: $SIZE_MB";; esac
case $IMAGE in busybox|bookworm|nodemods) ;; *) die "IMAGE: one of busybox, bookworm, nodemods";; esac
REGISTRY=${REGISTRY:-distribution}
case $REGISTRY in distribution) need docker-registry docker-registry;; wharf) ;;
  *) die "REGISTRY: distribution or wharf, not $REGISTRY";; esac
PORT=${PORT:-5711}
HOST=127.0.0.1:$PORT
WORK=${WORK:-$(cache_dir bench/client)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK$WHARF" in *[[:space:]]*) die "hyperfine -N splits commands at blanks: no blank in $WORK or $WHARF";; esac
! curl -s -o /dev/null --max-time 2 "http://$HOST/v2/" || die "something already answers on $HOST (set PORT)"

# the images: IMAGE from hack/images.sh, the big one written once per size
"$WHARF_ROOT/hack/images.sh" "$IMAGE" >&2 || die "hack/images.sh $IMAGE failed"
SRC=$WHARF_ROOT/.cache/images/$IMAGE
BIG=$WORK/big$SIZE_MB
if [ ! -f "$BIG/index.json" ]; then
  say "writing a $SIZE_MB MiB single-layer image to $BIG"
  rm -rf "$BIG.tmp"
  (cd "$WHARF_ROOT" && go run ./bench/clientimg "$BIG.tmp" "$SIZE_MB") >&2
  mv "$BIG.tmp" "$BIG"
fi

# stop.sh stops the registry (pid in reg/pid); restart.sh stops it, empties it and starts it.
cat > "$WORK/stop.sh" <<SH
#!/bin/sh
[ -s "$WORK/reg/pid" ] || exit 0
pid=\$(cat "$WORK/reg/pid")
kill "\$pid" 2>/dev/null
i=0
# gone, or a zombie its parent has not reaped yet
while [ \$i -lt 200 ] && kill -0 "\$pid" 2>/dev/null && [ "\$(sed 's/.*) //; s/ .*//' /proc/\$pid/stat 2>/dev/null)" != Z ]; do
  sleep 0.05; i=\$((i + 1))
done
kill -KILL "\$pid" 2>/dev/null
rm -f "$WORK/reg/pid"
exit 0
SH
if [ "$REGISTRY" = wharf ]; then
  cat > "$WORK/restart.sh" <<SH
#!/bin/sh
"$WORK/stop.sh"
rm -rf "$WORK/reg"; mkdir -p "$WORK/reg"
setsid "$WHARF" serve --addr $HOST --root "$WORK/reg/data" > "$WORK/reg/log" 2>&1 < /dev/null &
echo \$! > "$WORK/reg/pid"
for i in \$(seq 1 200); do curl -s -o /dev/null --max-time 1 "http://$HOST/v2/" && exit 0; sleep 0.05; done
echo "wharf serve did not answer on $HOST; see $WORK/reg/log" >&2
exit 1
SH
else
  cat > "$WORK/restart.sh" <<SH
#!/bin/sh
"$WORK/stop.sh"
exec "$WHARF_ROOT/hack/start-distribution.sh" $PORT "$WORK/reg" > /dev/null
SH
fi
chmod +x "$WORK/stop.sh" "$WORK/restart.sh"
at_exit '"$WORK/stop.sh"; rm -rf "$WORK/out" "$WORK/reg/data"'
"$WORK/restart.sh" || die "the $REGISTRY registry did not start"

# bench CASE WHARF_CMD SKOPEO_CMD PREPARE: both checked once, then timed in one hyperfine run;
# prints "wharf_s skopeo_s".
bench() {
  say "$1: $RUNS runs each"
  time_pair "$WORK/$REGISTRY-$1.json" "$4" "$RUNS" "$2" "$3"
}
printf '#!/bin/sh\nrm -rf "%s"\n' "$WORK/out" > "$WORK/clean.sh"
chmod +x "$WORK/clean.sh"

declare -A R
for img in "$IMAGE" big; do
  src=$SRC:latest; [ "$img" = big ] && src=$BIG:latest
  repo=docker://$HOST/bench/$img:latest
  # pull: the registry holds the image (pushed once by wharf)
  "$WORK/restart.sh"
  "$WHARF" copy -q "oci:$src" "$repo"
  read -r w s < <(bench "pull-$img" \
    "$WHARF copy -q $repo oci:$WORK/out:latest" \
    "skopeo copy -q --src-tls-verify=false $repo oci:$WORK/out:latest" \
    "$WORK/clean.sh") || true
  [[ -n ${s:-} ]] || die "pull-$img failed"
  R[pull_${img}_w]=$w R[pull_${img}_s]=$s
  read -r w s < <(bench "push-$img" \
    "$WHARF copy -q oci:$src $repo" \
    "skopeo copy -q --dest-tls-verify=false oci:$src $repo" \
    "$WORK/restart.sh") || true
  [[ -n ${s:-} ]] || die "push-$img failed"
  R[push_${img}_w]=$w R[push_${img}_s]=$s
  unset w s
done

ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
printf '%-18s %10s %10s %7s\n' case wharf_ms skopeo_ms ratio >&2
line="client-bench registry=$REGISTRY image=$IMAGE size_mb=$SIZE_MB"
for k in "pull_$IMAGE" pull_big "push_$IMAGE" push_big; do
  r=$(ratio "${R[${k}_w]}" "${R[${k}_s]}")
  printf '%-18s %10s %10s %7s\n' "$k" "$(ms "${R[${k}_w]}")" "$(ms "${R[${k}_s]}")" "$r" >&2
  line+=" ${k}_ratio=$r ${k}_wharf_ms=$(ms "${R[${k}_w]}") ${k}_skopeo_ms=$(ms "${R[${k}_s]}")"
done
result "$line"
