#!/usr/bin/env bash
# Installs what wharf's build, demo and tests need, idempotently: Debian packages for the peers
# wharf is tested against, and the Go-proxy clients (crane, oras) into .cache/bin.
# Nothing is downloaded when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers and their test tooling, plus gcc and libc6-dev for wharf-runtime's static cgo build
# (its C constructor joins user and time namespaces before Go starts threads; see the Makefile).
pkgs=(runc crun containerd podman conmon skopeo umoci docker-registry busybox-static catatonit
      hyperfine debootstrap jq curl util-linux time file iproute2 python3 dpkg gcc libc6-dev strace)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
mkdir -p .cache/bin
export GOBIN=$PWD/.cache/bin
[ -x .cache/bin/crane ] || go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
[ -x .cache/bin/oras ] || go install oras.land/oras/cmd/oras@v1.3.6
