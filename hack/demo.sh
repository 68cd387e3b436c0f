#!/usr/bin/env bash
# The walkthrough on an embedded default; see README.md.
set -euo pipefail
echo "demo: under construction" >&2
