#!/usr/bin/env bash
# Times `wharf copy` against `skopeo copy` between a registry and an OCI layout, both ways, in
# the same hyperfine run per case (the order alternating run by run): the bookworm image
# (make-bookworm.sh, four gzip layers) and a single-layer image of SIZE_MB incompressible bytes
# (bench/clientimg). Pulls go to a destination removed before each run; pushes go to a
# registry emptied and restarted before each run (so neither tool finds a blob there, and
# skopeo's blob-info cache cannot mount from an earlier run), both outside the timing.
#
# Usage: bench/client.sh            (-h: this text)
# Env:   WHARF (default ./bin/wharf)  RUNS (default 5)  SIZE_MB (default 1024)
#        REGISTRY distribution (default: docker-registry 2.8 via the peers script) or wharf
#        (`wharf serve`)  PORT (default 5311)  WORK (default /tmp/wharf-peers/bench-client)
# Last line: RESULT client-bench pull_bookworm_ratio=.. pull_big_ratio=.. push_bookworm_ratio=..
#            push_big_ratio=.. (ratio of medians, wharf / skopeo: below 1 means wharf is faster;
#            the goal is ≤ 0.5) plus each median in ms.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
cd "$(dirname "$0")/.."
WHARF=${WHARF:-$PWD/bin/wharf}
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-1024}
REGISTRY=${REGISTRY:-distribution}
PORT=${PORT:-5311}
WORK=${WORK:-${TMPDIR:-/tmp}/wharf-peers/bench-client}
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
HOST=127.0.0.1:$PORT
fail() { echo "bench/client: $*" >&2; echo "RESULT client-bench error=$1"; exit 2; }
for t in hyperfine skopeo jq curl go; do command -v "$t" >/dev/null || fail "need-$t"; done
[ -x "$WHARF" ] || fail "need-wharf (make build)"
mkdir -p "$WORK"

# the image builders keep their caches in their own WORK (debootstrap takes a while)
[ -f "$WORK/bookworm/index.json" ] || env -u WORK "$SHARED/peers/images/make-bookworm.sh" "$WORK/bookworm" >&2
[ -f "$WORK/big$SIZE_MB/index.json" ] || go run ./bench/clientimg "$WORK/big$SIZE_MB" "$SIZE_MB" >&2

# restart.sh empties the registry and starts it again; stop.sh stops it.
cat > "$WORK/stop.sh" <<SH
#!/bin/sh
[ -s "$WORK/reg/pid" ] || exit 0
pid=\$(cat "$WORK/reg/pid"); kill "\$pid" 2>/dev/null
for i in \$(seq 1 100); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.05; done
rm -f "$WORK/reg/pid"
SH
if [ "$REGISTRY" = wharf ]; then
  cat > "$WORK/restart.sh" <<SH
#!/bin/sh
"$WORK/stop.sh"; rm -rf "$WORK/reg"; mkdir -p "$WORK/reg"
setsid nohup "$WHARF" serve --addr $HOST --root "$WORK/reg/data" > "$WORK/reg/log" 2>&1 < /dev/null &
echo \$! > "$WORK/reg/pid"
for i in \$(seq 1 100); do curl -s -o /dev/null "http://$HOST/v2/" && exit 0; sleep 0.05; done
exit 1
SH
else
  cat > "$WORK/restart.sh" <<SH
#!/bin/sh
"$WORK/stop.sh"
FRESH=1 env -u WORK "$SHARED/peers/registry/start-distribution.sh" $PORT "$WORK/reg" > /dev/null
SH
fi
chmod +x "$WORK/stop.sh" "$WORK/restart.sh"
trap '"$WORK/stop.sh"' EXIT
"$WORK/restart.sh" || fail "registry-start"

median() { jq -r ".results[$1].median * 1000 | floor" "$2"; }
# bench NAME WHARF_CMD SKOPEO_CMD PREPARE: both in one hyperfine run; prints "wharf_ms skopeo_ms"
bench() {
  local j=$WORK/$REGISTRY-$1.json
  hyperfine -N --runs "$RUNS" --export-json "$j" --prepare "$4" -n wharf "$2" -n skopeo "$3" >&2
  echo "$(median 0 "$j") $(median 1 "$j")"
}

declare -A R
for img in bookworm big; do
  src=$WORK/bookworm:latest; [ $img = big ] && src=$WORK/big$SIZE_MB:latest
  # pull: the registry holds the image (pushed once by wharf)
  "$WORK/restart.sh"
  "$WHARF" copy -q "oci:$src" "docker://$HOST/bench/$img:latest"
  read -r w s < <(bench "pull-$img" \
    "$WHARF copy -q docker://$HOST/bench/$img:latest oci:$WORK/out:latest" \
    "skopeo copy -q --src-tls-verify=false docker://$HOST/bench/$img:latest oci:$WORK/out:latest" \
    "rm -rf $WORK/out")
  R[pull_${img}_w]=$w R[pull_${img}_s]=$s
  read -r w s < <(bench "push-$img" \
    "$WHARF copy -q oci:$src docker://$HOST/bench/$img:latest" \
    "skopeo copy -q --dest-tls-verify=false oci:$src docker://$HOST/bench/$img:latest" \
    "$WORK/restart.sh")
  R[push_${img}_w]=$w R[push_${img}_s]=$s
done
rm -rf "$WORK/out"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
printf '%-16s %10s %10s %7s\n' case wharf_ms skopeo_ms ratio >&2
line="RESULT client-bench registry=$REGISTRY size_mb=$SIZE_MB"
for k in pull_bookworm pull_big push_bookworm push_big; do
  r=$(ratio "${R[${k}_w]}" "${R[${k}_s]}")
  printf '%-16s %10s %10s %7s\n' "$k" "${R[${k}_w]}" "${R[${k}_s]}" "$r" >&2
  line+=" ${k}_ratio=$r ${k}_wharf_ms=${R[${k}_w]} ${k}_skopeo_ms=${R[${k}_s]}"
done
echo "$line"
