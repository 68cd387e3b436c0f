#!/usr/bin/env bash
# Runs wharf against the real peers: the Go integration tests (which drive skopeo, umoci, runc…
# out of process) and the shared peer suites. Called by `make test` after the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export WHARF_PEERS=1 WHARF_BIN=${WHARF_BIN:-$PWD/bin} WHARF_SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
go test -count=1 -tags integration ./test/...
