#!/usr/bin/env bash
# Times `wharf repack` against `umoci repack` of a dozen changed files in a bundle of the
# bookworm image, in the same hyperfine run. Each tool unpacks its own bundle once; before every
# timed run (outside the timing) the same 12 files are rewritten in both bundles (6 modified,
# 6 added), so every run commits a dozen changes.
#
# Usage: bench/repack.sh [LAYOUT:TAG]   (default: bookworm:v4 built with
#        ../shared/peers/images/make-bookworm.sh into $IMAGES)
# Env:   WHARF (default ./bin/wharf), IMAGES (default /tmp/wharf-test-images), RUNS (default 10),
#        WORK (default /tmp/wharf-bench-repack; on disk)
# Last line: RESULT repack ratio=X wharf_ms=.. umoci_ms=..  (ratio of medians, wharf / umoci:
#            below 1 means wharf is faster)
set -euo pipefail
cd "$(dirname "$0")/.."
WHARF=${WHARF:-$PWD/bin/wharf}
IMAGES=${IMAGES:-/tmp/wharf-test-images}
RUNS=${RUNS:-10}
WORK=${WORK:-/tmp/wharf-bench-repack}
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
for t in hyperfine umoci jq; do command -v "$t" >/dev/null || { echo "need $t" >&2; exit 2; }; done
[ -x "$WHARF" ] || { echo "need $WHARF (make build)" >&2; exit 2; }
REF=${1:-}
if [ -z "$REF" ]; then
  [ -f "$IMAGES/bookworm/index.json" ] || "$SHARED/peers/images/make-bookworm.sh" "$IMAGES/bookworm" >&2
  REF=$IMAGES/bookworm:v4
fi
SRC=${REF%:*}; TAG=${REF##*:}
rm -rf "$WORK"; mkdir -p "$WORK"
cp -a "$SRC" "$WORK/wl"; cp -a "$SRC" "$WORK/ul"
"$WHARF" unpack -q "oci:$WORK/wl:$TAG" "$WORK/wb"
umoci unpack --image "$WORK/ul:$TAG" "$WORK/ub" >/dev/null
cat > "$WORK/change.sh" <<'SH'
#!/bin/sh
# rewrite the same dozen files in both bundles
for b in "$@"; do
  for i in 1 2 3 4 5 6; do head -c $((i * 3000)) /dev/urandom > "$b/rootfs/etc/wharf-bench-new-$i"; done
  for f in etc/hostname etc/issue etc/motd etc/debian_version etc/shells etc/profile; do
    [ -e "$b/rootfs/$f" ] && date +%s%N >> "$b/rootfs/$f"
  done
done
SH
chmod +x "$WORK/change.sh"
"$WORK/change.sh" "$WORK/wb" "$WORK/ub"
hyperfine -N --runs "$RUNS" --export-json "$WORK/repack.json" \
  --prepare "$WORK/change.sh $WORK/wb $WORK/ub" \
  -n wharf "$WHARF repack -q $WORK/wb oci:$WORK/wl:bench" \
  -n umoci "umoci repack --image $WORK/ul:bench $WORK/ub" >&2
w=$(jq -r '.results[0].median * 1000 | floor' "$WORK/repack.json")
u=$(jq -r '.results[1].median * 1000 | floor' "$WORK/repack.json")
echo "RESULT repack ratio=$(awk -v a="$w" -v b="$u" 'BEGIN{printf "%.3f", a/b}') wharf_ms=$w umoci_ms=$u"
