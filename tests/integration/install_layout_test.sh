#!/usr/bin/env bash
# `cmake --install build --prefix /usr` (docs/production.md) must put nothing
# under /usr/etc, where no one reads it, and must install the daemon, the
# unit and the example configurations where the docs say.
# Usage: install_layout_test.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cmake --install "$build" --prefix "$root/usr" >/dev/null
found=$(cd "$root" && find . -type f | sort)
expected="./usr/bin/cerebras-metrics-proxy
./usr/lib/systemd/system/cerebras-metrics-proxy.service
./usr/share/doc/cerebras-metrics-proxy/examples/cerebras-metrics-proxy.yml
./usr/share/doc/cerebras-metrics-proxy/examples/config.yml"
if [ "$found" != "$expected" ]; then
  echo "installed files differ from docs/production.md:"
  diff <(echo "$expected") <(echo "$found") || true
  exit 1
fi
echo "ok: $(echo "$found" | wc -l) files, none under etc/"
