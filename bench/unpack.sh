#!/usr/bin/env bash
# Times `wharf unpack` against `umoci unpack` and `tar -xzf` of the same layers with the shared
# peer script ../shared/peers/image/bench-unpack.sh (same hyperfine run, tmpfs and disk, peak
# RSS), for the bookworm image (4 layers, whiteouts, opaque dir) and the 50,000-file image.
#
# Usage: bench/unpack.sh [LAYOUT:TAG ...]   (default: bookworm:v4 and nodemods:latest, built
#        once with ../shared/peers/images/make-{bookworm,nodemods}.sh into $IMAGES)
# Env:   WHARF (default ./bin/wharf), IMAGES (default /tmp/wharf-test-images, shared with
#        test/layer), ROUNDS/RUNS/MEDIA passed to bench-unpack.sh (the 50k image defaults to
#        ROUNDS=1 RUNS=1 unless NODEMODS_ROUNDS/NODEMODS_RUNS are set)
# Output: the peer script's lines, then one line per image:
#        RESULT unpack-<name> ratio_vs_umoci=.. ratio_vs_tar=.. disk_ratio_vs_umoci=.. disk_ratio_vs_tar=..
#        ut_maxrss_kb=.. umoci_maxrss_kb=.. tar_maxrss_kb=..   (time ratios: below 1 = wharf faster)
set -euo pipefail
cd "$(dirname "$0")/.."
WHARF=${WHARF:-$PWD/bin/wharf}
IMAGES=${IMAGES:-/tmp/wharf-test-images}
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
[ -x "$WHARF" ] || { echo "need $WHARF (make build)" >&2; exit 2; }
mkdir -p "$IMAGES"
img() { [ -f "$IMAGES/$1/index.json" ] || "$SHARED/peers/images/make-$1.sh" "$IMAGES/$1" >&2; }
if [ $# -eq 0 ]; then
  img bookworm; img nodemods
  set -- "$IMAGES/bookworm:v4" "$IMAGES/nodemods:latest"
fi
status=0
for ref in "$@"; do
  name=$(basename "${ref%:*}")
  extra=()
  if [ "$name" = nodemods ]; then extra=(ROUNDS="${NODEMODS_ROUNDS:-1}" RUNS="${NODEMODS_RUNS:-1}"); fi
  log=$(mktemp)
  env "${extra[@]}" "$SHARED/peers/image/bench-unpack.sh" "$WHARF unpack oci:{layout}:{tag} {out}" "$ref" > "$log" || status=1
  cat "$log"
  out=$(tail -1 "$log"); rm -f "$log"
  echo "${out/RESULT unpack /RESULT unpack-$name }"
done
exit $status
