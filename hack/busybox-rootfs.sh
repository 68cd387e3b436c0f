#!/usr/bin/env bash
# hack/busybox-rootfs.sh ROOTFS [BUSYBOX] — fills the directory ROOTFS with a busybox system:
# the static binary BUSYBOX (default /usr/bin/busybox, Debian's busybox-static) at
# /bin/busybox, a symlink to it for every applet, /etc/passwd and /etc/group (root, nobody),
# /etc/hostname, an empty /etc/resolv.conf, and the usual empty directories. The applet list
# comes from BUSYBOX when it runs here, else from the host's busybox (a foreign binary is never
# run). Used by hack/images.sh and the demo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case "${1:-}" in -h|--help|'') sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit $?;; esac
r=$1 bb=${2:-/usr/bin/busybox} lister=${2:-/usr/bin/busybox} n=0
[ -d "$r" ] || die "$r is not a directory"
[ -f "$bb" ] || die "no busybox at $bb (apt-get install busybox-static)"
"$bb" --list-full >/dev/null 2>&1 || lister=/usr/bin/busybox
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,proc,sys,dev,run}
chmod 0700 "$r/root"
chmod 1777 "$r/tmp" "$r/var/tmp"
install -m 0755 "$bb" "$r/bin/busybox"
while read -r a; do
  [ "$a" = bin/busybox ] && continue
  mkdir -p "$r/$(dirname "$a")"
  ln -sfn /bin/busybox "$r/$a"
  n=$((n + 1))
done < <("$lister" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
echo wharf > "$r/etc/hostname"
: > "$r/etc/resolv.conf"
say "busybox rootfs in $r: $(file -b "$bb" | cut -d, -f1-2), $n applet links"
