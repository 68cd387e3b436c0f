#!/usr/bin/env bash
# gen.sh regenerates image/testdata/valid/: real manifests, indexes, configs and oci-layout
# files written by umoci, skopeo and wharf, copied from layouts built by hack/images.sh
# (umoci-busybox: written by umoci; multiarch: by wharf) and copies skopeo makes of them.
# File names say the media type the tests parse them with:
#   *.oci-manifest.json *.oci-index.json *.oci-config.json *.oci-layout
#   *.docker-manifest.json *.docker-list.json *.docker-config.json
# Tests compute digests from the bytes, so regenerating (new timestamps) needs no test change.
# It also refreshes the fuzz seed corpora in testdata/fuzz/. Needs root, bin/wharf (make
# build), umoci, skopeo, jq, python3.
# Usage: image/testdata/gen.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/wharf-image-gen.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$here/valid
rm -rf "$out" && mkdir -p "$out"

blob() { # layout digest → path
	echo "$1/blobs/${2%%:*}/${2#*:}"
}

# umoci: one-layer busybox, manifest without a mediaType field.
"$repo/hack/images.sh" umoci-busybox "$work/bb" >/dev/null 2>&1
m=$(jq -r '.manifests[0].digest' "$work/bb/index.json")
cp "$work/bb/index.json" "$out/umoci-layout.oci-index.json"
cp "$work/bb/oci-layout" "$out/umoci.oci-layout"
cp "$(blob "$work/bb" "$m")" "$out/umoci-busybox.oci-manifest.json"
c=$(jq -r '.config.digest' "$(blob "$work/bb" "$m")")
cp "$(blob "$work/bb" "$c")" "$out/umoci-busybox.oci-config.json"

# skopeo: the same image copied to a new layout (skopeo writes the mediaType field).
skopeo copy -q "oci:$work/bb:latest" "oci:$work/sk:latest" >/dev/null
m=$(jq -r '.manifests[0].digest' "$work/sk/index.json")
cp "$work/sk/index.json" "$out/skopeo-layout.oci-index.json"
cp "$(blob "$work/sk" "$m")" "$out/skopeo-busybox.oci-manifest.json"

# skopeo --format v2s2: Docker schema 2 manifest and config.
skopeo copy -q --format v2s2 "oci:$work/bb:latest" "dir:$work/dir" >/dev/null
cp "$work/dir/manifest.json" "$out/skopeo-busybox.docker-manifest.json"
c=$(jq -r '.config.digest' "$work/dir/manifest.json")
cp "$work/dir/${c#*:}" "$out/skopeo-busybox.docker-config.json"

# multi-arch: index.json → image index → linux/amd64 and linux/arm64 manifests.
"$repo/hack/images.sh" multiarch "$work/multi" >/dev/null 2>&1
cp "$work/multi/index.json" "$out/multiarch-layout.oci-index.json"
i=$(jq -r '.manifests[0].digest' "$work/multi/index.json")
cp "$(blob "$work/multi" "$i")" "$out/multiarch.oci-index.json"
for arch in amd64 arm64; do
	m=$(jq -r --arg a $arch '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob "$work/multi" "$i")")
	cp "$(blob "$work/multi" "$m")" "$out/multiarch-$arch.oci-manifest.json"
	c=$(jq -r '.config.digest' "$(blob "$work/multi" "$m")")
	cp "$(blob "$work/multi" "$c")" "$out/multiarch-$arch.oci-config.json"
done
skopeo copy -q --all --format v2s2 "oci:$work/multi:latest" "dir:$work/dmulti" >/dev/null
cp "$work/dmulti/manifest.json" "$out/skopeo-multiarch.docker-list.json"

# Fuzz seed corpora: every valid and hostile fixture, in the go test fuzz v1 format.
python3 - "$here" <<'PY'
import json, os, sys, glob, hashlib
here = sys.argv[1]
targets = {
    "FuzzParseManifest": ["*manifest.json"],
    "FuzzParseIndex": ["*index.json", "*list.json"],
    "FuzzParse": ["*.json"],
}
for target, pats in targets.items():
    d = os.path.join(here, "fuzz", target)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.remove(f)
    files = set()
    for sub in ("valid", "hostile"):
        for p in pats:
            files.update(glob.glob(os.path.join(here, sub, p)))
    for f in sorted(files):
        data = open(f, "rb").read()
        if len(data) > 65536:
            continue
        lit = json.dumps(data.decode("utf-8"))  # a valid Go string literal for this input
        name = "seed-" + hashlib.sha256(data).hexdigest()[:16]
        with open(os.path.join(d, name), "w") as w:
            w.write("go test fuzz v1\n[]byte(%s)\n" % lit)
PY
echo "RESULT image-testdata files=$(ls "$out" | wc -l)"
