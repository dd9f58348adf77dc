#!/usr/bin/env bash
# Long differential runs: generated exposition bodies against the real
# Prometheus (Debian's /usr/bin/prometheus), directly and through the daemon.
#   scripts/differential.sh --bodies 20000 --seed 1 2 3 [--batch 500]
#                           [--minimize [--write]] [--no-limits]
# --minimize delta-debugs every mismatch; --write adds each minimized one to
# tests/data/differential (a permanent case of differential_e2e_test).
# Builds the daemon first unless CMP_BUILD_DIR (default build) already has it.
# Runs nice'd: a long run shares the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CMP_BUILD_DIR:-build}
daemon=$build/cerebras-metrics-proxy
if [ ! -x "$daemon" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target cerebras-metrics-proxy
fi
[ -x /usr/bin/prometheus ] || { echo "differential.sh: /usr/bin/prometheus is missing (apt-get install prometheus)" >&2; exit 1; }
exec nice python3 tests/integration/differential.py --daemon "$daemon" --mock "$daemon" --repo . "$@"
