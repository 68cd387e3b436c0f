#!/usr/bin/env bash
# hack/images.sh NAME [OUT] — builds one of wharf's test images, with wharf itself, into the
# OCI image layout OUT (default .cache/images/NAME). Built once: a layout that was completed
# (OUT/.wharf-test-image holds its RESULT line) is reused as it is; delete it to rebuild.
#
#   busybox    one layer: the host's static busybox at /bin/busybox, a symlink per applet,
#              /etc/passwd, /etc/group; cmd /bin/sh. BUSYBOX= and ARCH= pick another binary
#              and platform.
#   bookworm   Debian bookworm in four gzip layers, a tag each (latest = v4):
#              v1 debootstrap --variant=minbase (no /dev nodes, apt lists or .debs);
#              v2 adds Go's net/ and encoding/ sources (~1,000 files), a 20 MB binary, a
#                 file, a symlink to it and a hardlink to it;
#              v3 removes directories and files (whiteouts), replaces a symlink by a file,
#                 rewrites the hardlinked file, grows the binary, changes a mode only;
#              v4 replaces /etc/apt (an opaque directory).
#   nodemods   the busybox layer plus one layer of N (50,000) small text files under
#              /app/node_modules, generated from a fixed seed; workdir /app.
#   multiarch  an image index (tag latest) of two busybox images, linux/amd64 and
#              linux/arm64: the foreign busybox-static comes from Debian, fetched and checked
#              by `debootstrap --download-only` (nothing foreign is run).
#   all        the four above.
#   umoci-busybox  not a wharf image: the busybox tree written into a layout by umoci itself
#              (umoci init, new, config, unpack, repack), for the suites that check that
#              wharf reads what a peer writes.
#
# Every layer is written by `wharf new`, `wharf config`, `wharf unpack` and `wharf repack`
# (the index by `wharf manifest create`); debootstrap's tree and the arm64 busybox are cached
# in .cache/debootstrap. Needs root, bin/wharf (make build), debootstrap, go, python3.
# Env: MIRROR (default http://deb.debian.org/debian), N (nodemods files), WHARF.
# Last line: RESULT image-NAME layout=OUT tags=... layers=N entries=N whiteouts=N opaque=N ...
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help|'') usage; [ -n "${1:-}" ]; exit $?;; esac
NAME=$1
case $NAME in busybox|bookworm|nodemods|multiarch|umoci-busybox) ;;
  all) for n in busybox bookworm nodemods multiarch; do "$0" "$n"; done; exit 0;;
  *) die "unknown image $NAME (busybox, bookworm, nodemods, multiarch, all, umoci-busybox)";;
esac
OUT=${2:-$(cache_dir images)/$NAME}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
RESULT_NAME=image-$NAME
need_root
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
DONE=$OUT/.wharf-test-image

# One builder per image at a time (test packages and benchmarks may ask together).
exec 9>"$OUT.lock"
flock 9
if [ -f "$DONE" ]; then
  say "$NAME: cached in $OUT"
  _result_done=1
  cat "$DONE"
  exit 0
fi
if [ -e "$OUT" ] && [ ! -f "$OUT/oci-layout" ] && [ -n "$(ls -A "$OUT")" ]; then
  die "$OUT exists and is not an OCI image layout"
fi
rm -rf "$OUT"
TMP=$OUT.building
rm -rf "$TMP" "$TMP.work"
mkdir -p "$TMP.work"
at_exit 'rm -rf "$TMP.work"'
W=$TMP.work
w() { "$WHARF" -q "$@"; }
PATHENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# busybox LAYOUT TAG BUSYBOX ARCH: the one-layer busybox image.
busybox() {
  local l=$1 tag=$2 bb=$3 arch=$4 b
  b=$W/bundle-$arch
  w new --platform "linux/$arch" "oci:$l:$tag"
  w config "oci:$l:$tag" --cmd /bin/sh --workdir / --env "$PATHENV" --label org.opencontainers.image.title=wharf-test-busybox
  rm -rf "$b"
  w unpack --platform "linux/$arch" "oci:$l:$tag" "$b"
  "$WHARF_ROOT/hack/busybox-rootfs.sh" "$b/rootfs" "$bb"
  w repack --history.created_by "hack/images.sh busybox ($arch)" "$b" "oci:$l:$tag"
  rm -rf "$b"
}

# debootstrap_tree: bookworm minbase, cached (it is the slow part: a minute or two).
debootstrap_tree() {
  local d; d=$(cache_dir debootstrap)
  if [ ! -f "$d/bookworm-minbase.done" ]; then
    need debootstrap debootstrap
    rm -rf "$d/bookworm-minbase"
    say "debootstrap --variant=minbase bookworm ($MIRROR); log in $d/bookworm-minbase.log"
    debootstrap --variant=minbase bookworm "$d/bookworm-minbase" "$MIRROR" > "$d/bookworm-minbase.log" 2>&1 ||
      { tail -20 "$d/bookworm-minbase.log" >&2; die "debootstrap failed; see $d/bookworm-minbase.log"; }
    touch "$d/bookworm-minbase.done"
  fi
  echo "$d/bookworm-minbase"
}

# foreign_busybox ARCH: the path of Debian's busybox-static binary for ARCH, downloaded with
# debootstrap --download-only (which checks the Release signature and every .deb's checksum).
foreign_busybox() {
  local arch=$1 d deb
  d=$(cache_dir debootstrap)
  if [ ! -f "$d/busybox-$arch/bin/busybox" ]; then
    need debootstrap debootstrap; need dpkg-deb dpkg
    rm -rf "$d/download-$arch" "$d/busybox-$arch"
    say "debootstrap --download-only --arch=$arch --include=busybox-static bookworm"
    debootstrap --download-only --arch="$arch" --variant=minbase --include=busybox-static bookworm \
      "$d/download-$arch" "$MIRROR" > "$d/download-$arch.log" 2>&1 ||
      { tail -20 "$d/download-$arch.log" >&2; die "debootstrap --download-only failed; see $d/download-$arch.log"; }
    deb=$(ls "$d/download-$arch"/var/cache/apt/archives/busybox-static_*_"$arch".deb)
    dpkg-deb -x "$deb" "$d/busybox-$arch.tmp"
    mv "$d/busybox-$arch.tmp" "$d/busybox-$arch"
    say "$(basename "$deb"): sha256 $(sha256sum "$deb" | cut -c1-16)…, checked by debootstrap against the signed Release"
    rm -rf "$d/download-$arch"
  fi
  echo "$d/busybox-$arch/bin/busybox"
}

# count_layers LAYOUT TAG: "layers=N entries=N whiteouts=N opaque=N" of the image's layers.
count_layers() {
  local l=$1 tag=$2 m layers=0 entries=0 wh=0 opq=0 list
  m=$(w inspect --raw "oci:$l:$tag")
  for dg in $(jq -r '.layers[].digest' <<<"$m"); do
    list=$(tar -tzf "$l/blobs/${dg%%:*}/${dg#*:}")
    layers=$((layers + 1))
    entries=$((entries + $(grep -c . <<<"$list")))
    wh=$((wh + $(grep -E '(^|/)\.wh\.' <<<"$list" | grep -vc '\.wh\.\.wh\.\.opq$' || true)))
    opq=$((opq + $(grep -c '\.wh\.\.wh\.\.opq$' <<<"$list" || true)))
  done
  echo "layers=$layers entries=$entries whiteouts=$wh opaque=$opq"
}

case $NAME in
busybox)
  busybox "$TMP" latest "${BUSYBOX:-/usr/bin/busybox}" "${ARCH:-$(goarch)}"
  summary="tags=latest $(count_layers "$TMP" latest)"
  ;;
bookworm)
  tree=$(debootstrap_tree)
  need go golang-go
  w new "oci:$TMP:v1"
  w config "oci:$TMP:v1" --cmd bash --workdir / --env "$PATHENV" --env LANG=C.UTF-8 --stop-signal SIGTERM \
    --label org.opencontainers.image.title=wharf-test-bookworm
  B=$W/bundle R=$W/bundle/rootfs
  w unpack "oci:$TMP:v1" "$B"
  say "v1: the minbase tree"
  cp -a "$tree/." "$R/"
  rm -rf "$R"/dev/* "$R"/proc/* "$R"/sys/* "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb
  w repack --history.created_by "debootstrap --variant=minbase bookworm" "$B" "oci:$TMP:v1"
  say "v2: added files, a symlink and a hardlink"
  goroot=$(go env GOROOT)
  mkdir -p "$R/opt/app/src" "$R/usr/local/bin"
  cp -a "$goroot/src/net" "$goroot/src/encoding" "$R/opt/app/src/"
  cp "$(go env GOTOOLDIR)/compile" "$R/usr/local/bin/app"
  printf 'listen=:8080\nworkers=4\n' > "$R/etc/app.conf"
  ln -s /etc/app.conf "$R/opt/app/app.conf"
  ln "$R/etc/app.conf" "$R/opt/app/app.conf.hardlink"
  w repack --history.created_by "add /opt/app" "$B" "oci:$TMP:v2"
  say "v3: whiteouts, a symlink replaced, a hardlinked file rewritten, a grown binary, a chmod"
  rm -rf "$R/usr/share/doc" "$R/usr/share/man" "$R/usr/share/info" "$R/opt/app/src/net/http/pprof"
  rm -f "$R"/usr/bin/perl* "$R/etc/debian_version"
  rm -f "$R/etc/os-release"
  echo 'PRETTY_NAME="wharf test Debian 12 (rewritten)"' > "$R/etc/os-release"
  printf 'listen=:9090\nworkers=8\n' > "$R/etc/app.conf"
  head -c 1048576 /dev/urandom >> "$R/usr/local/bin/app"
  chmod 0700 "$R/opt/app/src/encoding/json"
  w repack --history.created_by "delete docs, rewrite files" "$B" "oci:$TMP:v3"
  say "v4: /etc/apt replaced (an opaque directory)"
  rm -rf "$R/etc/apt"
  mkdir -p "$R/etc/apt/sources.list.d"
  echo "deb $MIRROR bookworm main" > "$R/etc/apt/sources.list"
  w repack --history.created_by "replace /etc/apt" "$B" "oci:$TMP:v4"
  w tag "oci:$TMP:v4" latest
  rm -rf "$B"
  summary="tags=v1,v2,v3,v4,latest $(count_layers "$TMP" v4)"
  ;;
nodemods)
  need python3 python3
  busybox "$TMP" latest "${BUSYBOX:-/usr/bin/busybox}" "$(goarch)"
  B=$W/bundle
  w unpack "oci:$TMP:latest" "$B"
  say "generating ${N:-50000} files under /app/node_modules"
  python3 "$WHARF_ROOT/hack/gen-nodemods.py" "$B/rootfs/app" "${N:-50000}" >&2
  w repack --history.created_by "COPY node_modules /app" "$B" "oci:$TMP:latest"
  w config "oci:$TMP:latest" --workdir /app --cmd node --cmd index.js
  files=$(find "$B/rootfs/app" -type f | wc -l)
  rm -rf "$B"
  summary="tags=latest files=$files $(count_layers "$TMP" latest)"
  ;;
multiarch)
  host=$(goarch)
  case $host in amd64) foreign=arm64;; arm64) foreign=amd64;; *) die "multiarch: only amd64 and arm64 hosts";; esac
  fbb=$(foreign_busybox "$foreign")
  busybox "$W/$host" latest /usr/bin/busybox "$host"
  busybox "$W/$foreign" latest "$fbb" "$foreign"
  w manifest create --annotation org.opencontainers.image.description="wharf test multi-platform busybox" \
    "oci:$TMP:latest" "oci:$W/amd64:latest" "oci:$W/arm64:latest" >/dev/null
  summary="tags=latest index=$(jq -r '.manifests[0].digest' "$TMP/index.json") platforms=linux/amd64,linux/arm64"
  ;;
umoci-busybox)
  need umoci umoci
  umoci init --layout "$TMP"
  umoci new --image "$TMP:latest"
  umoci config --image "$TMP:latest" --no-history --os linux --architecture "$(goarch)" --config.cmd /bin/sh \
    --config.workingdir / --config.env "$PATHENV" --config.label org.opencontainers.image.title=wharf-test-busybox-umoci
  umoci unpack --image "$TMP:latest" "$W/bundle" >/dev/null
  "$WHARF_ROOT/hack/busybox-rootfs.sh" "$W/bundle/rootfs" /usr/bin/busybox
  umoci repack --image "$TMP:latest" --history.created_by "hack/images.sh umoci-busybox" "$W/bundle" >/dev/null
  umoci gc --layout "$TMP"
  summary="tags=latest $(count_layers "$TMP" latest) writer=umoci"
  ;;
esac
[ "$NAME" = umoci-busybox ] || w gc "oci:$TMP" >/dev/null
w validate "oci:$TMP" >&2
mv "$TMP" "$OUT"
line="RESULT image-$NAME layout=$OUT $summary"
echo "$line" > "$DONE"
result "${line#RESULT }"
