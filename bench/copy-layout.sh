#!/usr/bin/env bash
# Times `wharf copy` against `skopeo copy` between two OCI layouts on this machine, in the same
# hyperfine run (destination removed before each run, outside the timing), for a single
# platform and for --all of a multi-platform image.
#
# Usage: bench/copy-layout.sh [LAYOUT:TAG]   (default: a bookworm layout made by
#        ../shared/peers/images/make-bookworm.sh, tag v4; plus make-multiarch.sh for --all)
# Env:   WHARF (default ./bin/wharf), RUNS (default 7), WORK (default /tmp/wharf-bench-copy)
# Last line: RESULT copy-layout ratio=X all_ratio=Y wharf_ms=.. skopeo_ms=..
#            (ratio of medians, wharf / skopeo: below 1 means wharf is faster)
set -euo pipefail
cd "$(dirname "$0")/.."
WHARF=${WHARF:-$PWD/bin/wharf}
RUNS=${RUNS:-7}
WORK=${WORK:-/tmp/wharf-bench-copy}
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
mkdir -p "$WORK"
for t in hyperfine skopeo jq; do command -v "$t" >/dev/null || { echo "need $t" >&2; exit 2; }; done
[ -x "$WHARF" ] || { echo "need $WHARF (make build)" >&2; exit 2; }

IMG=${1:-}
if [ -z "$IMG" ]; then
  [ -f "$WORK/bookworm/oci-layout" ] || "$SHARED/peers/images/make-bookworm.sh" "$WORK/bookworm" >&2
  IMG=$WORK/bookworm:v4
fi
[ -f "$WORK/multi/oci-layout" ] || "$SHARED/peers/images/make-multiarch.sh" "$WORK/multi" >&2

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }

hyperfine -N --runs "$RUNS" --export-json "$WORK/one.json" \
  --prepare "rm -rf $WORK/out-w $WORK/out-s" \
  "$WHARF copy -q oci:$IMG oci:$WORK/out-w:x" \
  "skopeo copy -q oci:$IMG oci:$WORK/out-s:x" >&2
hyperfine -N --runs "$RUNS" --export-json "$WORK/all.json" \
  --prepare "rm -rf $WORK/out-w $WORK/out-s" \
  "$WHARF copy -q --all oci:$WORK/multi:latest oci:$WORK/out-w:x" \
  "skopeo copy -q --all oci:$WORK/multi:latest oci:$WORK/out-s:x" >&2

w=$(median 0 "$WORK/one.json"); s=$(median 1 "$WORK/one.json")
wa=$(median 0 "$WORK/all.json"); sa=$(median 1 "$WORK/all.json")
ratio=$(awk -v a="$w" -v b="$s" 'BEGIN{printf "%.2f", a/b}')
all_ratio=$(awk -v a="$wa" -v b="$sa" 'BEGIN{printf "%.2f", a/b}')
echo "RESULT copy-layout ratio=$ratio all_ratio=$all_ratio wharf_ms=$w skopeo_ms=$s wharf_all_ms=$wa skopeo_all_ms=$sa"
