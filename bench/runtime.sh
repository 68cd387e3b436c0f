#!/usr/bin/env bash
# Side-by-side latency of wharf-runtime and runc (run, create, start, state, delete, delete
# --force): the shared peer benchmark, pointed at ./bin/wharf-runtime. The last line is
#   RESULT runtime-bench run_ratio=.. create_ratio=.. delete_force_ratio=.. ...
# (ratio = wharf-runtime / runc, below 1 = wharf-runtime is faster). Quick run:
#   RUNS=5 ROUNDS=2 bench/runtime.sh        Against crun: bench/runtime.sh /usr/bin/crun
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${WHARF_SHARED:-$(cd .. && pwd)/shared}
[ -x bin/wharf-runtime ] || make build
exec "$SHARED/peers/runtime/bench.sh" ./bin/wharf-runtime "${1:-/usr/sbin/runc}"
