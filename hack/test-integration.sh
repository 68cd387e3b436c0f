#!/usr/bin/env bash
# Runs wharf against the real peers: the Go integration tests under test/ (tagged `integration`;
# they drive ./bin/wharf, skopeo, umoci, runc, containerd, podman… out of process). Called by
# `make test` after the unit tests, with WHARF_PEERS=1 so that a missing peer is a failure, not
# a skip. Each suite reports its counts (testutil.Report); they are printed at the end, passed
# or not.
#
# Env: WHARF_BIN     directory holding the built wharf binaries (default ./bin; built if missing)
#      WHARF_PEERS   1 (default here): a missing peer fails the test instead of skipping it
#      TESTFLAGS     extra `go test` flags, e.g. TESTFLAGS='-run Conformance -v'
#      PKGS          the packages to run (default: every one under test/), e.g. PKGS=./test/registry
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export PATH=$PATH:$PWD/.cache/bin
export WHARF_PEERS=${WHARF_PEERS:-1} WHARF_BIN=${WHARF_BIN:-$PWD/bin}
export WHARF_REPORT=$PWD/.cache/report.txt
mkdir -p .cache
: > "$WHARF_REPORT"

if [ ! -x "$WHARF_BIN/wharf" ]; then
  echo "test-integration: $WHARF_BIN/wharf is missing; building it" >&2
  make -s build BIN="$WHARF_BIN"
fi

# Only directories that hold integration-tagged packages: an empty test/ (or one without Go
# files yet) is not an error.
mapfile -t pkgs < <(go list -tags integration -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ${PKGS:-./test/...} 2>/dev/null | sed '/^$/d')
if ((${#pkgs[@]} == 0)); then
  echo "test-integration: no integration test packages under ./test; nothing to run" >&2
  exit 0
fi
echo "test-integration: ${#pkgs[@]} package(s): ${pkgs[*]##*/wharf/}" >&2
# `make vet` does not see files behind the integration tag.
go vet -tags integration "${pkgs[@]}"
# -p 1: one package at a time: the suites start daemons (registries, containerd, podman) and
# containers, and this machine has two cores.
report() {
  echo "test-integration: what each suite checked:"
  sed 's/^/  /' "$WHARF_REPORT"
}
trap report EXIT
# shellcheck disable=SC2086
go test -p 1 -count=1 -tags integration -timeout 40m ${TESTFLAGS:-} "${pkgs[@]}"
