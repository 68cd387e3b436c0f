#!/usr/bin/env bash
# The wharf walkthrough on an embedded default (`make demo`; see README.md).
#
# Each step is a function named step_<name>, listed in STEPS in the order they run; a later
# issue appends its steps (unpack, run, push…) by adding a function and a name to STEPS. Every
# step prints what it does, then the commands it runs; re-running the demo starts each step's
# output afresh, so the demo is idempotent.
#
# Env: DEMO      work directory (default ./demo)
#      WHARF     the wharf binary (default ./bin/wharf, built by `make build`)
#      STEPS     the steps to run (default: all, in order), e.g. STEPS="image inspect"
#      PORT      the port of the demo's registry on 127.0.0.1 (default 5080)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DEMO=${DEMO:-demo}
WHARF=${WHARF:-$REPO/bin/wharf}
ALL_STEPS=(image ls inspect validate copy archive tag serve push pull manifest unpack runtime run)
read -r -a STEPS <<<"${STEPS:-${ALL_STEPS[*]}}"

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || bold='' dim='' off=''
n=0
# say TITLE LINES...: announce a step.
say() { n=$((n + 1)); printf '\n%s== %d. %s%s\n' "$bold" "$n" "$1" "$off"; shift; for l in "$@"; do printf '   %s\n' "$l"; done; }
# run CMD...: print the command, then run it; the demo stops at the first failure.
run() { printf '%s$ %s%s\n' "$dim" "${*//$REPO\//}" "$off"; "$@"; }

[ -x "$WHARF" ] || { echo "demo: $WHARF is missing: run 'make build' (or 'make demo')" >&2; exit 2; }
mkdir -p "$DEMO"
IMG=$DEMO/busybox

step_image() {
  say "Build a busybox image layout with wharf" \
      "An empty image, its config, an unpacked bundle filled with the host's static busybox" \
      "(a symlink per applet), and the change committed as the image's one layer."
  rm -rf "$IMG" "$DEMO/build"
  run "$WHARF" new "oci:$IMG:latest"
  run "$WHARF" config "oci:$IMG:latest" --cmd /bin/sh --env PATH=/usr/sbin:/usr/bin:/sbin:/bin
  run "$WHARF" unpack "oci:$IMG:latest" "$DEMO/build"
  run "$REPO/hack/busybox-rootfs.sh" "$DEMO/build/rootfs"
  run "$WHARF" repack --history.created_by "busybox-rootfs.sh" "$DEMO/build" "oci:$IMG:latest"
  rm -rf "$DEMO/build"
}

step_ls() {
  say "List the layout's tags" "Each index.json entry: its tag (org.opencontainers.image.ref.name), digest and media type."
  run "$WHARF" ls "oci:$IMG"
}

step_inspect() {
  say "Inspect the image" "Manifest and config summarised like 'skopeo inspect': platform, layers, env, labels."
  run "$WHARF" inspect "oci:$IMG:latest"
}

step_validate() {
  say "Validate the image" \
      "Every blob reachable from index.json: digest, size, JSON schema and spec semantics."
  run "$WHARF" validate "oci:$IMG:latest"
}

step_copy() {
  say "Copy the image into a second layout" \
      "The copy-graph algorithm: children before parents, blobs already there are skipped."
  rm -rf "$DEMO/copy"
  run "$WHARF" copy "oci:$IMG:latest" "oci:$DEMO/copy:v1"
  run "$WHARF" validate "oci:$DEMO/copy:v1"
}

step_archive() {
  say "Copy the image into an oci-archive" "A tar of an OCI image layout, readable by skopeo and podman (oci-archive:)."
  rm -f "$DEMO/busybox.tar"
  run "$WHARF" copy "oci:$IMG:latest" "oci-archive:$DEMO/busybox.tar:latest"
  run tar -tf "$DEMO/busybox.tar"
  run "$WHARF" ls "oci-archive:$DEMO/busybox.tar"
}

step_tag() {
  say "Tag, untag and garbage-collect" "Tags are index.json entries; gc removes blobs nothing references."
  run "$WHARF" tag "oci:$DEMO/copy:v1" stable
  run "$WHARF" untag "oci:$DEMO/copy:v1"
  run "$WHARF" gc "oci:$DEMO/copy"
  run "$WHARF" ls "oci:$DEMO/copy"
}

# The walkthrough: ship the image through wharf's own registry (no public registry is reachable
# here), pull it back as an OCI layout, inspect its manifest, unpack it to a bundle and run it.
PORT=${PORT:-5080}
REF=docker://127.0.0.1:$PORT/demo/busybox:latest
RT=${WHARF_RUNTIME:-$(dirname "$WHARF")/wharf-runtime}
serve_pid=
stop_registry() { if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true; serve_pid=; fi; }
trap stop_registry EXIT

step_serve() {
  say "Start wharf's registry" "An OCI distribution-spec 1.1 registry on 127.0.0.1:$PORT, storing under $DEMO/registry."
  stop_registry
  printf '%s$ %s%s\n' "$dim" "wharf serve --addr 127.0.0.1:$PORT --root $DEMO/registry &" "$off"
  "$WHARF" serve --addr "127.0.0.1:$PORT" --root "$DEMO/registry" 2>"$DEMO/registry.log" &
  serve_pid=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return; sleep 0.05; done
  echo "demo: the registry did not start; see $DEMO/registry.log" >&2; exit 1
}

need_registry() { [ -n "$serve_pid" ] || step_serve; }

step_push() {
  need_registry
  say "Push the image to the registry" "Blobs first (skipped when present), then the manifest, then the tag."
  run "$WHARF" copy "oci:$IMG:latest" "$REF"
  run "$WHARF" tags "$REF"
}

step_pull() {
  need_registry
  say "Pull the image as an OCI layout" "The same copy algorithm, the other way; every byte verified against its digest."
  rm -rf "$DEMO/pulled"
  run "$WHARF" copy "$REF" "oci:$DEMO/pulled:latest"
}

step_manifest() {
  say "Inspect its manifest" "The raw manifest, exactly the bytes its digest names."
  run "$WHARF" inspect --raw "oci:$DEMO/pulled:latest"
  echo
}

step_unpack() {
  say "Unpack it to a runtime bundle" \
      "Layers applied confined to rootfs/ (image-spec layer.md); config.json from the image config (conversion.md)."
  rm -rf "$DEMO/bundle"
  run "$WHARF" unpack "oci:$DEMO/pulled:latest" "$DEMO/bundle"
  run ls "$DEMO/bundle"
}

step_runtime() {
  say "Run the bundle with wharf-runtime" "The runc-compatible runtime: create, start, wait and delete in one 'run'."
  run "$RT" --root "$DEMO/runtime" run --bundle "$DEMO/bundle" "demo-$$" <<<'echo "hello from $(hostname), pid $$"'
}

step_run() {
  need_registry
  say "All at once: wharf run" "Pull, unpack and run straight from the registry; the container's exit status is wharf's."
  run "$WHARF" run --state-dir "$DEMO/state" --runtime-root "$DEMO/runtime" "$REF" sh -c 'echo "hello from wharf run: $(uname -sm)"'
}

for s in "${STEPS[@]}"; do
  declare -F "step_$s" >/dev/null || { echo "demo: no step '$s' (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
  "step_$s"
done
printf "\n%sdemo: done%s (%d steps; outputs in %s)\n" "$bold" "$off" "$n" "$DEMO"
