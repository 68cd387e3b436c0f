#!/usr/bin/env bash
# Times `wharf unpack` against `umoci unpack` and `tar -xzf` of the same layers with the shared
# peer script ../shared/peers/image/bench-unpack.sh (same hyperfine run, tmpfs and disk, peak
# RSS), for the bookworm image (4 layers, whiteouts, opaque dir) and the 50,000-file image.
#
# The disk. On ext4 *without a journal* (this VM's root file system) the kernel does not reuse
# an inode freed in the last 60 s (360 s while its inode table block is dirty): every inode
# allocation scans the group's free inodes one by one from the start of the group, skipping the
# recently deleted ones. The peer script deletes each command's previous tree just before timing
# it, so a 50,000-file unpack there measures that quadratic scan, for every tool alike, and by
# the order of the runs: tar takes 4.9 s or 18 s, wharf 1.3 s or 24 s, depending on what was
# deleted before. So when the default work directory is on a journal-less ext4, the disk runs go
# to a journaled ext4 (mkfs.ext4 defaults, as on nearly every host) made in a sparse file on the
# same disk and loop-mounted with direct I/O for the run; NOJOURNAL=1 adds the same runs on the
# journal-less file system as a second RESULT line, for reference.
#
# Usage: bench/unpack.sh [LAYOUT:TAG ...]   (default: bookworm:v4 and nodemods:latest, built
#        once with ../shared/peers/images/make-{bookworm,nodemods}.sh into $IMAGES)
# Env:   WHARF (default ./bin/wharf), IMAGES (default /tmp/wharf-test-images, shared with
#        test/layer), ROUNDS/RUNS/MEDIA passed to bench-unpack.sh (the 50k image defaults to
#        ROUNDS=3 RUNS=1 unless NODEMODS_ROUNDS/NODEMODS_RUNS are set), WORK (the disk medium's
#        directory; set, it is used as it is), NOJOURNAL=1 (see above), DISK_IMG (default
#        /var/tmp/wharf-bench-ext4.img, removed afterwards)
# Output: the peer script's lines, then one line per image:
#        RESULT unpack-<name> ratio_vs_umoci=.. ratio_vs_tar=.. disk_ratio_vs_umoci=.. disk_ratio_vs_tar=..
#        ut_maxrss_kb=.. umoci_maxrss_kb=.. tar_maxrss_kb=.. disk=ext4-journaled-loop|<fstype of WORK>
#        (time ratios: below 1 = wharf faster), and with NOJOURNAL=1 RESULT unpack-<name>-nojournal ...
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

# nojournal_ext4 DIR: DIR is on an ext4 file system mounted without a journal.
nojournal_ext4() {
  local src
  [ "$(findmnt -n -o FSTYPE -T "$1")" = ext4 ] || return 1
  src=$(findmnt -n -o SOURCE -T "$1")
  [ "$(cat "/sys/fs/ext4/$(basename "$src")/journal_task" 2>/dev/null)" = "<none>" ]
}

DEFAULT_WORK=${TMPDIR:-/tmp}/wharf-peers/bench-unpack
mkdir -p "${WORK:-$DEFAULT_WORK}"
DISK=$(findmnt -n -o FSTYPE -T "${WORK:-$DEFAULT_WORK}")
RAW=""
if [ -z "${WORK:-}" ] && nojournal_ext4 "$DEFAULT_WORK"; then
  [ "$(id -u)" = 0 ] || { echo "need root (loop mount)" >&2; exit 2; }
  IMG=${DISK_IMG:-/var/tmp/wharf-bench-ext4.img}
  MNT=$DEFAULT_WORK-journaled
  LOOP=""
  cleanup() { umount "$MNT" 2>/dev/null || true; [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null || true; rm -f "$IMG"; }
  trap cleanup EXIT
  mkdir -p "$(dirname "$IMG")" "$MNT"
  [ "$(stat -f -c %T "$(dirname "$IMG")")" = tmpfs ] && { echo "DISK_IMG $IMG is on tmpfs, not on disk" >&2; exit 2; }
  umount "$MNT" 2>/dev/null || true
  rm -f "$IMG"; truncate -s 16G "$IMG"
  mkfs.ext4 -q -F "$IMG"
  # direct I/O: the loop device writes to the disk, not to the backing file's page cache
  if LOOP=$(losetup -f --show --direct-io=on "$IMG") && mount "$LOOP" "$MNT" && ! nojournal_ext4 "$MNT"; then
    echo "note: $DEFAULT_WORK is on ext4 without a journal; the disk runs use a journaled ext4 in $IMG on the same disk (NOJOURNAL=1 adds runs on the journal-less one)" >&2
    export WORK=$MNT/bench
    DISK=ext4-journaled-loop
    [ "${NOJOURNAL:-0}" = 1 ] && RAW=$DEFAULT_WORK
  else
    echo "warning: no loop device here: the disk runs stay on $DEFAULT_WORK, ext4 without a journal (see above)" >&2
    DISK=ext4-nojournal
  fi
fi

status=0
bench() {  # NAME-SUFFIX DISK-DESCRIPTION REF [ENV...]
  local suffix=$1 desc=$2 ref=$3 name log out; shift 3
  name=$(basename "${ref%:*}")
  local extra=("$@")
  if [ "$name" = nodemods ]; then extra+=(ROUNDS="${NODEMODS_ROUNDS:-3}" RUNS="${NODEMODS_RUNS:-1}"); fi
  log=$(mktemp)
  env "${extra[@]}" "$SHARED/peers/image/bench-unpack.sh" "$WHARF unpack oci:{layout}:{tag} {out}" "$ref" > "$log" || status=1
  cat "$log"
  out=$(tail -1 "$log"); rm -f "$log"
  echo "${out/RESULT unpack /RESULT unpack-$name$suffix } disk=$desc"
}
for ref in "$@"; do
  bench "" "$DISK" "$ref"
  if [ -n "$RAW" ]; then
    bench -nojournal ext4-nojournal "$ref" WORK="$RAW" MEDIA=disk
  fi
done
exit $status
