#!/usr/bin/env bash
# bench/unpack.sh [IMAGE ...] — times `wharf unpack` against `umoci unpack` and a tar floor.
#
# For each image, three commands unpack it into a fresh directory:
#   wharf  $WHARF unpack oci:LAYOUT:TAG OUT
#   umoci  umoci unpack --image LAYOUT:TAG OUT
#   tar    mkdir OUT, then tar -xzf each layer into it, base first (-xf or --zstd by media
#          type): no whiteouts, no config; a floor, not a correct unpacker.
# Each is run once, untimed, to check it works; then all three are timed in one `hyperfine -N`
# invocation per round, ROUNDS rounds of RUNS runs each, the order rotating from round to round.
# Before every run, outside the timing, its output directory is removed (and on disk the file
# systems synced). This is done on a tmpfs (no disk in the figure) and on disk; then each
# command runs once more under /usr/bin/time for its peak RSS (on the first medium). A ratio is
# median(wharf) / median(peer) over every run: below 1 means wharf is faster.
#
# The disk. On ext4 *without a journal* (this VM's root file system) the kernel does not reuse
# an inode freed in the last 60 s (360 s while its inode table block is dirty): every inode
# allocation scans the group's free inodes one by one from the start of the group, skipping the
# recently deleted ones. Deleting each command's previous tree just before timing it then makes
# a 50,000-file unpack measure that quadratic scan, for every tool alike, and by the order of the
# runs: tar takes 4.9 s or 18 s, wharf 1.3 s or 24 s, depending on what was deleted before. So
# when the disk work directory is on a journal-less ext4, the disk runs go to a journaled ext4
# (mkfs.ext4 defaults, as on nearly every host) made in a sparse file on the same disk and
# loop-mounted with direct I/O for the run; NOJOURNAL=1 adds the same runs on the journal-less
# file system (RESULT unpack-NAME-nojournal), for reference.
#
# IMAGE: LAYOUT[:TAG] (an OCI image layout; TAG defaults to its only tag, else latest; an index
# gives the linux/<this arch> image), or NAME[:TAG] with NAME one of hack/images.sh's images
# (built once into .cache/images). Default: bookworm:v4 nodemods:latest (QUICK=1: busybox:latest).
# Env:  WHARF (default bin/wharf)   ROUNDS=3 RUNS=2 (nodemods: NODEMODS_ROUNDS=3 NODEMODS_RUNS=1)
#       MEDIA="tmpfs disk"   TMPFS_DIR (a directory on tmpfs; default /dev/shm, else a tmpfs is
#       mounted for the run)   WORK (the disk runs' directory, used as it is: no loop file system)
#       NOJOURNAL=1 (see above)   DISK_IMG (the loop file system's sparse file; default under
#       .cache/bench/unpack, removed afterwards)   QUICK=1: busybox:latest, ROUNDS=2 RUNS=2 (4 s)
# bench/unpack.sh --on-disk COMMAND [ARG...] runs COMMAND with WORK set to a directory of the
# disk medium above (the journaled loop ext4 here), then removes it: another unpack benchmark
# run there by hand gives a second opinion on the same file system.
# Needs root, hyperfine, umoci, jq, tar, gzip, /usr/bin/time; losetup and mkfs.ext4 for the loop.
# Output: a table and one line per image (hyperfine's output stays in .cache/bench/unpack/results)
#   RESULT unpack-NAME ratio_vs_umoci=.. ratio_vs_tar=.. disk_ratio_vs_umoci=.. disk_ratio_vs_tar=..
#          ut_maxrss_kb=.. umoci_maxrss_kb=.. tar_maxrss_kb=.. disk=ext4-journaled-loop|FSTYPE
#   (the first two on tmpfs; ut = wharf), then the last line, every field of those lines again:
#   RESULT unpack bookworm_ratio_vs_umoci=.. ... nodemods_ratio_vs_umoci=.. ... disk=..
# shellcheck disable=SC2016 # at_exit takes code to eval at exit, in single quotes
# shellcheck source-path=SCRIPTDIR/..
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "$0")/../hack/lib.sh"

usage() { awk 'NR == 1 { next } !/^#/ || /^# shellcheck/ { exit } { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0;; esac
# shellcheck disable=SC2034 # read by hack/lib.sh's exit trap
RESULT_NAME=unpack
need_root
need hyperfine hyperfine; need umoci umoci; need jq jq; need tar tar; need gzip gzip
[ -x /usr/bin/time ] || die "missing /usr/bin/time (apt-get install time)"
[ -x "$WHARF" ] || die "$WHARF is missing (make build)"
WHARF=$(cd "$(dirname "$WHARF")" && pwd)/$(basename "$WHARF")

ON_DISK=0
if [ "${1:-}" = --on-disk ]; then
  shift
  [ $# -gt 0 ] || die "--on-disk needs a command"
  ON_DISK=1 MEDIA=disk RESULT_NAME=''
fi
QUICK=${QUICK:-0}
if [ "$ON_DISK" = 1 ]; then :
elif [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-2} RUNS=${RUNS:-2}
  [ $# -gt 0 ] || set -- busybox:latest
else
  ROUNDS=${ROUNDS:-3} RUNS=${RUNS:-2}
  [ $# -gt 0 ] || set -- bookworm:v4 nodemods:latest
fi
MEDIA=${MEDIA:-tmpfs disk}
for m in $MEDIA; do case $m in tmpfs|disk) ;; *) die "MEDIA: unknown medium $m (tmpfs, disk)";; esac; done
has_medium() { case " $MEDIA " in *" $1 "*) return 0;; esac; return 1; }
# hyperfine -N splits its commands at blanks: keep every path free of them.

BASE=$(cache_dir bench/unpack)
no_blank "$BASE"; no_blank "$WHARF"
RUN=$(mktemp -d "$BASE/run.XXXXXX")
# Registered first, so run last: whatever is mounted below RUN is gone by then.
at_exit 'umount_below "$RUN"; rm -rf "$RUN"'
RES=$RUN/results
mkdir -p "$RES"

# --- the images --------------------------------------------------------------------------------
# image REF: sets L (absolute layout path) and T (tag) for LAYOUT[:TAG] or NAME[:TAG].

# layers LAYOUT TAG: "BLOB-PATH MEDIA-TYPE" for each layer, base first. Resolved here with jq,
# not by wharf: the floor does not depend on the command under test.
layers() {
  local l=$1 d f depth
  d=$(jq -r --arg t "$2" '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)][0].digest // empty' "$l/index.json")
  [ -n "$d" ] || die "$l has no tag $2"
  for ((depth = 0; depth < 8; depth++)); do
    f=$l/blobs/${d%%:*}/${d#*:}
    [ -f "$f" ] || die "$l: missing blob $d"
    if [ "$(jq -r 'has("manifests")' "$f")" = false ]; then
      jq -r --arg l "$l" '.layers[] | "\($l)/blobs/\(.digest | sub(":"; "/")) \(.mediaType)"' "$f"
      return
    fi
    d=$(jq -r --arg a "$(goarch)" '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a)][0].digest // empty' "$f")
    [ -n "$d" ] || die "$l:$2: no linux/$(goarch) image in the index"
  done
  die "$l:$2: indexes nested too deep"
}

# --- the media ---------------------------------------------------------------------------------
declare -A DIR
if has_medium tmpfs; then
  t=${TMPFS_DIR:-/dev/shm}
  if [ -d "$t" ] && [ "$(stat -f -c %T "$t")" = tmpfs ]; then
    DIR[tmpfs]=$(mktemp -d "$t/wharf-bench-unpack.XXXXXX")
    at_exit 'rm -rf "${DIR[tmpfs]}"'
  else
    [ -z "${TMPFS_DIR:-}" ] || die "TMPFS_DIR $TMPFS_DIR is not on tmpfs"
    mkdir -p "$RUN/tmpfs"
    mount -t tmpfs -o mode=0755 wharf-bench-unpack "$RUN/tmpfs"
    DIR[tmpfs]=$RUN/tmpfs
  fi
  no_blank "${DIR[tmpfs]}"
fi

# nojournal_ext4 DIR: DIR is on an ext4 file system mounted without a journal.
nojournal_ext4() {
  local src
  [ "$(findmnt -n -o FSTYPE -T "$1")" = ext4 ] || return 1
  src=$(findmnt -n -o SOURCE -T "$1")
  [ "$(cat "/sys/fs/ext4/$(basename "$src")/journal_task" 2>/dev/null)" = "<none>" ]
}

DISK=none LOOP='' MNT='' IMG=''
if has_medium disk; then
  if [ -n "${WORK:-}" ]; then
    mkdir -p "$WORK"
    DIR[disk]=$(cd "$WORK" && pwd)/wharf-bench-unpack.$$
    DISK=$(findmnt -n -o FSTYPE -T "$WORK")
  else
    mkdir -p "$RUN/disk"
    DIR[disk]=$RUN/disk
    DISK=$(findmnt -n -o FSTYPE -T "$RUN/disk")
    if nojournal_ext4 "$RUN/disk"; then
      need losetup mount; need mkfs.ext4 e2fsprogs
      IMG=${DISK_IMG:-$RUN/ext4.img} MNT=$RUN/journaled
      mkdir -p "$(dirname "$IMG")" "$MNT"
      [ "$(stat -f -c %T "$(dirname "$IMG")")" != tmpfs ] || die "DISK_IMG $IMG is on tmpfs, not on disk"
      at_exit 'if [ -n "$MNT" ] && mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
        [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null; rm -f "$IMG"'
      rm -f "$IMG"
      truncate -s "${DISK_IMG_SIZE:-16G}" "$IMG"
      mkfs.ext4 -q -F "$IMG"
      # direct I/O: the loop device writes to the disk, not to the backing file's page cache
      if LOOP=$(losetup -f --show --direct-io=on "$IMG") && mount "$LOOP" "$MNT" && ! nojournal_ext4 "$MNT"; then
        say "$RUN is on ext4 without a journal: the disk runs use a journaled ext4 in $IMG on the same disk"
        [ "${NOJOURNAL:-0}" != 1 ] || DIR[raw]=$RUN/disk
        DIR[disk]=$MNT/bench DISK=ext4-journaled-loop
      else
        warn "no loop file system here: the disk runs stay on ext4 without a journal (see bench/unpack.sh -h)"
        DISK=ext4-nojournal
      fi
    fi
  fi
  mkdir -p "${DIR[disk]}"
  no_blank "${DIR[disk]}"
  [ "$(stat -f -c %T "${DIR[disk]}")" != tmpfs ] || warn "${DIR[disk]} is on tmpfs, not on disk (set WORK)"
  [ -z "${WORK:-}" ] || at_exit 'rm -rf "${DIR[disk]}"'
fi
if [ "$ON_DISK" = 1 ]; then
  say "running $* with WORK=${DIR[disk]} ($DISK)"
  rc=0
  WORK=${DIR[disk]} "$@" || rc=$?
  exit "$rc"
fi

# --- one image on some media -------------------------------------------------------------------
SIDES=(ut umoci tar)
declare -A LABEL=([ut]=wharf [umoci]=umoci [tar]="tar (floor)")
LINES=()

# cmd SIDE OUT: the command line of SIDE unpacking $L:$T into OUT.
cmd() {
  case $1 in
    ut) echo "$WHARF unpack oci:$L:$T $2" ;;
    umoci) echo "umoci unpack --image $L:$T $2" ;;
    tar) echo "$TARSH $2" ;;
  esac
}

# measure NAME MEDIUM...: times the three commands on each MEDIUM (tmpfs, disk or raw, the
# journal-less disk) and appends "unpack-NAME k=v..." to LINES.
measure() {
  local name=$1 m s r k rounds=$ROUNDS runs=$RUNS n u o t a b; shift
  local -a order args
  local -A RATIO RSS
  if [[ $name == nodemods* ]]; then rounds=${NODEMODS_ROUNDS:-3} runs=${NODEMODS_RUNS:-1}; fi
  say "$name ($L:$T): $* — $rounds rounds of $runs runs"
  for m in "$@"; do
    for s in "${SIDES[@]}"; do
      if [ "$m" = tmpfs ]; then
        printf '#!/bin/sh\nrm -rf "%s"\n' "${DIR[$m]}/$s"
      else
        printf '#!/bin/sh\nrm -rf "%s"\nsync\n' "${DIR[$m]}/$s"
      fi > "$RUN/prep-$m-$s.sh"
      chmod +x "$RUN/prep-$m-$s.sh"
    done
    for s in "${SIDES[@]}"; do
      "$RUN/prep-$m-$s.sh"
      # shellcheck disable=SC2046,SC2091 # the command line is split as hyperfine -N splits it
      $(cmd "$s" "${DIR[$m]}/$s") > "$RES/$name-check-$m-$s.log" 2>&1 ||
        { tail -5 "$RES/$name-check-$m-$s.log" >&2; die "${LABEL[$s]} failed on $m: $(cmd "$s" "${DIR[$m]}/$s")"; }
    done
    a=$(find "${DIR[$m]}/ut/rootfs" | wc -l) b=$(find "${DIR[$m]}/umoci/rootfs" | wc -l)
    [ "$a" = "$b" ] || warn "$name on $m: wharf unpacked $a entries, umoci $b"
    for ((r = 1; r <= rounds; r++)); do
      k=$(((r - 1) % ${#SIDES[@]}))
      order=("${SIDES[@]:k}" "${SIDES[@]:0:k}")
      args=(-N --style basic --runs "$runs" --export-json "$RES/$name-$m-r$r.json")
      for s in "${order[@]}"; do args+=(--prepare "$RUN/prep-$m-$s.sh"); done
      for s in "${order[@]}"; do args+=(-n "$s" "$(cmd "$s" "${DIR[$m]}/$s")"); done
      say "$name on $m, round $r/$rounds: ${order[*]}"
      hyperfine "${args[@]}" > "$RES/$name-$m-r$r.txt" 2>&1 ||
        { tail -5 "$RES/$name-$m-r$r.txt" >&2; die "hyperfine failed ($name on $m, round $r)"; }
    done
    n=$((rounds * runs))
    u=$(med "$name-$m" ut) o=$(med "$name-$m" umoci) t=$(med "$name-$m" tar)
    RATIO[$m-umoci]=$(ratio "$u" "$o") RATIO[$m-tar]=$(ratio "$u" "$t")
    printf '%-22s %-6s %-12s %9.3f s %9s %9s   (median of %s runs)\n' "$name" "$m" wharf "$u" "${RATIO[$m-umoci]}" "${RATIO[$m-tar]}" "$n"
    printf '%-22s %-6s %-12s %9.3f s\n' "$name" "$m" umoci "$o"
    printf '%-22s %-6s %-12s %9.3f s\n' "$name" "$m" "tar (floor)" "$t"
    for s in "${SIDES[@]}"; do rm -rf "${DIR[$m]:?}/$s"; done
  done
  m=$1
  for s in "${SIDES[@]}"; do
    "$RUN/prep-$m-$s.sh"
    # shellcheck disable=SC2046
    /usr/bin/time -f %M -o "$RES/$name-maxrss-$s" $(cmd "$s" "${DIR[$m]}/$s") > /dev/null 2>&1 || true
    RSS[$s]=$(tail -1 "$RES/$name-maxrss-$s" 2>/dev/null | grep -E '^[0-9]+$' || echo nan)
    rm -rf "${DIR[$m]:?}/$s"
  done
  # the journal-less runs (raw) are disk runs too
  if [ -n "${RATIO[raw-umoci]:-}" ]; then RATIO[disk-umoci]=${RATIO[raw-umoci]} RATIO[disk-tar]=${RATIO[raw-tar]}; fi
  LINES+=("unpack-$name ratio_vs_umoci=${RATIO[tmpfs-umoci]:-nan} ratio_vs_tar=${RATIO[tmpfs-tar]:-nan} disk_ratio_vs_umoci=${RATIO[disk-umoci]:-nan} disk_ratio_vs_tar=${RATIO[disk-tar]:-nan} ut_maxrss_kb=${RSS[ut]} umoci_maxrss_kb=${RSS[umoci]} tar_maxrss_kb=${RSS[tar]}")
}

# med PREFIX SIDE: the median of SIDE's times in every round of PREFIX.
med() { cat "$RES/$1"-r*.json | jq -r --arg s "$2" '.results[] | select(.command == $s) | .times[]' | median; }

declare -A SEEN
printf '%-22s %-6s %-12s %11s %9s %9s\n' image medium command median vs-umoci vs-tar
for ref in "$@"; do
  image_ref "$ref"; L=$IMAGE_LAYOUT T=$IMAGE_TAG
  no_blank "$L"
  name=$(basename "$L")
  [ -z "${SEEN[$name]:-}" ] || name=$name-${T//[^A-Za-z0-9_.-]/_}
  SEEN[$name]=1
  mapfile -t LAYERS < <(layers "$L" "$T")
  [ ${#LAYERS[@]} -gt 0 ] || die "$L:$T has no layers"
  TARSH=$RUN/tar-$name.sh
  {
    echo '#!/bin/sh'
    echo 'set -e'
    echo 'mkdir -p "$1"'
    for l in "${LAYERS[@]}"; do
      case ${l#* } in
        *gzip) echo "tar -xzf ${l%% *} -C \"\$1\"" ;;
        *zstd) echo "tar --zstd -xf ${l%% *} -C \"\$1\"" ;;
        *) echo "tar -xf ${l%% *} -C \"\$1\"" ;;
      esac
    done
  } > "$TARSH"
  chmod +x "$TARSH"
  say "$name: $L:$T, ${#LAYERS[@]} layers, $(du -Lbc "${LAYERS[@]%% *}" | tail -1 | cut -f1) compressed bytes"
  media=()
  for m in $MEDIA; do media+=("$m"); done
  measure "$name" "${media[@]}"
  LINES[-1]+=" disk=$DISK"
  echo "RESULT ${LINES[-1]}"
  if [ -n "${DIR[raw]:-}" ]; then
    measure "$name-nojournal" raw
    LINES[-1]+=" disk=ext4-nojournal"
    echo "RESULT ${LINES[-1]}"
  fi
done

rm -rf "$BASE/results"
cp -a "$RES" "$BASE/results"
say "hyperfine output: $BASE/results"
sum=unpack
for line in "${LINES[@]}"; do
  read -r head fields <<<"$line"
  p=${head#unpack-}; p=${p//[^A-Za-z0-9_]/_}
  for f in $fields; do
    # a journal-less line has disk figures only
    [[ $f == disk=* || ( $p == *_nojournal && $f == ratio_vs_* ) ]] || sum+=" ${p}_$f"
  done
done
result "$sum disk=$DISK"
