#!/usr/bin/env bash
# bench/copy-layout.sh [IMAGE] — times `wharf copy` against `skopeo copy` between two OCI image
# layouts on this machine: IMAGE (one platform), then the two-platform multiarch index with
# --all. Both tools in one `hyperfine -N` run per case, each into its own destination, removed
# (both) before every run, outside the timing; each command runs once untimed first.
#
# IMAGE: LAYOUT[:TAG] (an OCI image layout), or NAME[:TAG] with NAME one of hack/images.sh's
# images (built once into .cache/images, as multiarch is). Default bookworm:v4 (QUICK=1:
# busybox:latest).
# Env:  WHARF (default bin/wharf)  RUNS (default 7; QUICK=1: 3)  WORK (default
#       .cache/bench/copy-layout, emptied first)
# Needs hyperfine, skopeo, jq.
# Last line: RESULT copy-layout ratio=X all_ratio=Y wharf_ms=.. skopeo_ms=.. wharf_all_ms=..
#            skopeo_all_ms=.. image=NAME   (ratio of medians, wharf / skopeo: below 1 means
#            wharf is faster; all_ = the multiarch index with --all)
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=copy-layout
need hyperfine hyperfine; need skopeo skopeo; need jq jq
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
WHARF=$(cd "$(dirname "$WHARF")" && pwd)/$(basename "$WHARF")
if [ "${QUICK:-0}" = 1 ]; then RUNS=${RUNS:-3} REF=${1:-busybox:latest}
else RUNS=${RUNS:-7} REF=${1:-bookworm:v4}; fi

# image REF: sets L (absolute layout path) and T (tag, default latest) for LAYOUT[:TAG] or NAME[:TAG].
image_ref multiarch:latest; L=$IMAGE_LAYOUT T=$IMAGE_TAG
MULTI=$L
image_ref "$REF"; L=$IMAGE_LAYOUT T=$IMAGE_TAG

WORK=${WORK:-$(cache_dir bench/copy-layout)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK$WHARF$L$MULTI" in *[[:space:]]*) die "hyperfine -N splits commands at blanks: no blank in the paths";; esac
rm -rf "${WORK:?}"/*
at_exit 'rm -rf "$WORK/out-w" "$WORK/out-s"'
printf '#!/bin/sh\nrm -rf "%s" "%s"\n' "$WORK/out-w" "$WORK/out-s" > "$WORK/clean.sh"
chmod +x "$WORK/clean.sh"

# bench CASE WHARF_CMD SKOPEO_CMD: both checked once, then timed; prints "wharf_s skopeo_s".
bench() {
  say "$1: $RUNS runs each"
  time_pair "$WORK/$1.json" "$WORK/clean.sh" "$RUNS" "$2" "$3"
}
read -r w s < <(bench one "$WHARF copy -q oci:$L:$T oci:$WORK/out-w:x" "skopeo copy -q oci:$L:$T oci:$WORK/out-s:x")
read -r wa sa < <(bench all "$WHARF copy -q --all oci:$MULTI:latest oci:$WORK/out-w:x" "skopeo copy -q --all oci:$MULTI:latest oci:$WORK/out-s:x")
[[ -n ${w:-} && -n ${wa:-} ]] || die "a benchmark failed (see above)"
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }
result "copy-layout ratio=$(ratio "$w" "$s") all_ratio=$(ratio "$wa" "$sa") wharf_ms=$(ms "$w") skopeo_ms=$(ms "$s") wharf_all_ms=$(ms "$wa") skopeo_all_ms=$(ms "$sa") image=$(basename "$L"):$T"
