#!/usr/bin/env bash
# Runs wharf against the real peers: the Go integration tests under test/ (tagged `integration`;
# they drive ./bin/wharf, skopeo, umoci, runc… out of process). Called by `make test` after the
# unit tests, with WHARF_PEERS=1 so that a missing peer is a failure, not a skip.
#
# Env: WHARF_BIN     directory holding the built wharf binaries (default ./bin; built if missing)
#      WHARF_SHARED  the shared directory with peers/ (default ../shared)
#      WHARF_PEERS   1 (default here): a missing peer fails the test instead of skipping it
#      TESTFLAGS     extra `go test` flags, e.g. TESTFLAGS='-run Hostile -v'
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
export PATH=$PATH:$PWD/.cache/bin
export WHARF_PEERS=${WHARF_PEERS:-1} WHARF_BIN=${WHARF_BIN:-$PWD/bin}
export WHARF_SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}

if [ ! -x "$WHARF_BIN/wharf" ]; then
  echo "test-integration: $WHARF_BIN/wharf is missing; building it" >&2
  make -s build BIN="$WHARF_BIN"
fi

# Only directories that hold integration-tagged packages: an empty test/ (or one without Go
# files yet) is not an error.
mapfile -t pkgs < <(go list -tags integration -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./test/... 2>/dev/null | sed '/^$/d')
if ((${#pkgs[@]} == 0)); then
  echo "test-integration: no integration test packages under ./test; nothing to run" >&2
  exit 0
fi
echo "test-integration: ${#pkgs[@]} package(s): ${pkgs[*]##*/wharf/}" >&2
# `make vet` does not see files behind the integration tag.
go vet -tags integration "${pkgs[@]}"
# -p 1: one package at a time. The suites share the peers' work directories (the image
# builders' caches under ${TMPDIR:-/tmp}/wharf-peers) and this machine's two cores; run side by
# side, two make-multiarch.sh runs trample each other's scratch layouts.
# shellcheck disable=SC2086
exec go test -p 1 -count=1 -tags integration -timeout 30m ${TESTFLAGS:-} "${pkgs[@]}"
