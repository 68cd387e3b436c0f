#!/usr/bin/env bash
# bench/repack.sh [IMAGE] — times `wharf repack` against `umoci repack` of a dozen changed files.
#
# Each tool unpacks its own bundle of IMAGE once, from its own copy of the layout. Before every
# timed run, outside the timing, the same files are rewritten in both bundles (6 added under
# /etc, and /etc/hostname, issue, motd, debian_version, shells and profile appended to where
# they exist), so every run commits about a dozen changes as a new layer tagged `bench`. Each
# command runs once untimed first (it must work), then both are timed in one `hyperfine -N`
# run of RUNS runs each.
#
# IMAGE: LAYOUT[:TAG] (an OCI image layout), or NAME[:TAG] with NAME one of hack/images.sh's
# images (built once into .cache/images). Default bookworm:v4 (QUICK=1: busybox:latest).
# Env:  WHARF (default bin/wharf)  RUNS (default 10; QUICK=1: 3)  WORK (default
#       .cache/bench/repack, emptied first; on disk)
# Needs root, hyperfine, umoci, jq.
# Last line: RESULT repack ratio=X wharf_ms=.. umoci_ms=.. image=NAME
#            (ratio of medians, wharf / umoci: below 1 means wharf is faster)
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=repack
need_root
need hyperfine hyperfine; need umoci umoci; need jq jq
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
WHARF=$(cd "$(dirname "$WHARF")" && pwd)/$(basename "$WHARF")
if [ "${QUICK:-0}" = 1 ]; then RUNS=${RUNS:-3} REF=${1:-busybox:latest}
else RUNS=${RUNS:-10} REF=${1:-bookworm:v4}; fi

# image REF: sets L (absolute layout path) and T (tag, default latest) for LAYOUT[:TAG] or NAME[:TAG].
image_ref "$REF"; L=$IMAGE_LAYOUT T=$IMAGE_TAG

WORK=${WORK:-$(cache_dir bench/repack)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK$WHARF" in *[[:space:]]*) die "hyperfine -N splits commands at blanks: no blank in $WORK or $WHARF";; esac
rm -rf "${WORK:?}"/*
at_exit 'rm -rf "$WORK/wl" "$WORK/ul" "$WORK/wb" "$WORK/ub"'
cp -a "$L" "$WORK/wl"
cp -a "$L" "$WORK/ul"
say "unpacking $L:$T for each tool"
"$WHARF" unpack -q "oci:$WORK/wl:$T" "$WORK/wb"
umoci unpack --image "$WORK/ul:$T" "$WORK/ub" > /dev/null

cat > "$WORK/change.sh" <<'SH'
#!/bin/sh
# change.sh BUNDLE...: rewrite the same dozen files in each bundle
for b in "$@"; do
  for i in 1 2 3 4 5 6; do head -c $((i * 3000)) /dev/urandom > "$b/rootfs/etc/wharf-bench-new-$i"; done
  for f in etc/hostname etc/issue etc/motd etc/debian_version etc/shells etc/profile; do
    if [ -e "$b/rootfs/$f" ]; then date +%s%N >> "$b/rootfs/$f"; fi
  done
done
SH
chmod +x "$WORK/change.sh"

W="$WHARF repack -q $WORK/wb oci:$WORK/wl:bench"
U="umoci repack --image $WORK/ul:bench $WORK/ub"
"$WORK/change.sh" "$WORK/wb" "$WORK/ub"
# shellcheck disable=SC2086 # split as hyperfine -N splits them
{ $W && $U > /dev/null; } > "$WORK/check.log" 2>&1 || { tail -5 "$WORK/check.log" >&2; die "a repack failed: $W; $U"; }
say "timing $RUNS runs each"
hyperfine -N --style basic --runs "$RUNS" --export-json "$WORK/repack.json" \
  --prepare "$WORK/change.sh $WORK/wb $WORK/ub" -n wharf "$W" -n umoci "$U" >&2
w=$(jq -r '.results[] | select(.command == "wharf") | .median' "$WORK/repack.json")
u=$(jq -r '.results[] | select(.command == "umoci") | .median' "$WORK/repack.json")
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
result "repack ratio=$(ratio "$w" "$u") wharf_ms=$(ms "$w") umoci_ms=$(ms "$u") image=$(basename "$L"):$T"
