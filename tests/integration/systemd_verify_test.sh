#!/usr/bin/env bash
# Checks packaging/systemd/cerebras-metrics-proxy.service with
# `systemd-analyze verify`, with ExecStart= pointing at the binary under test
# (the unit names /usr/bin/..., which is not installed in CI).
# Usage: systemd_verify_test.sh BINARY_PATH [REPO_ROOT]
# Exit: 0 pass, 1 fail, 77 skip (no systemd-analyze).
set -euo pipefail

binary=${1:?usage: systemd_verify_test.sh BINARY_PATH [REPO_ROOT]}
root=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
unit_src="$root/packaging/systemd/cerebras-metrics-proxy.service"
unit_name=cerebras-metrics-proxy.service

command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: systemd-analyze not found"; exit 77; }
[ -f "$unit_src" ] || { echo "FAIL: $unit_src missing"; exit 1; }
[ -x "$binary" ] || { echo "FAIL: $binary is not an executable file"; exit 1; }
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

fail() { echo "FAIL: $*"; exit 1; }

# Properties the daemon and the docs rely on: a drift here is a bug even when
# the unit is still syntactically valid.
for want in \
  '^Type=notify$' \
  '^WatchdogSec=' \
  '^DynamicUser=yes$' \
  '^StateDirectory=cerebras-metrics-proxy$' \
  '^ConfigurationDirectory=cerebras-metrics-proxy$' \
  '^LoadCredential=api-key:/etc/cerebras-metrics-proxy/api-key$' \
  '^ExecStart=/usr/bin/cerebras-metrics-proxy --config.file=/etc/cerebras-metrics-proxy/cerebras-metrics-proxy.yml( \$ARGS)?$' \
  '^EnvironmentFile=-/etc/default/cerebras-metrics-proxy$' \
  '^ExecReload=/bin/kill -HUP \$MAINPID$' \
  '^Restart=on-failure$' \
  '^ProtectSystem=strict$' \
  '^NoNewPrivileges=yes$' \
  '^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$' \
  '^SystemCallFilter=@system-service$' \
  '^CapabilityBoundingSet=$' \
  '^MemoryMax='; do
  grep -Eq "$want" "$unit_src" || fail "unit has no line matching /$want/"
done
# The systemd-flavoured example config must use the credential, not an env var.
grep -Eq '^[[:space:]]*api_key_file:[[:space:]]*api-key[[:space:]]*$' "$root/packaging/systemd/config.yml" \
  || fail "packaging/systemd/config.yml does not use api_key_file: api-key"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Every /usr/bin/cerebras-metrics-proxy (ExecStart=, ExecStartPre=...) becomes
# the binary under test; all else is verified as shipped.
sed "s#/usr/bin/cerebras-metrics-proxy#$binary#g" "$unit_src" >"$tmp/$unit_name"

# verify also loads units the file refers to (network-online.target,
# multi-user.target); --man=no avoids a man(1) lookup per Documentation= line.
# Any message on stderr about our unit is a failure: verify exits 0 on some
# warnings (unknown keys, bad values are only logged).
set +e
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/$unit_name" 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
[ $rc -eq 0 ] || fail "systemd-analyze verify exited $rc"
if printf '%s\n' "$out" | grep -F "$unit_name" | grep -Eiv 'Failed to (connect|set up) .*bus|Failed to put bus name' | grep -q .; then
  fail "systemd-analyze verify reported problems with $unit_name"
fi
# With the real daemon, the systemd-flavoured config must pass --check-config
# the way the unit runs it (the key from $CREDENTIALS_DIRECTORY/api-key) once
# the user has put in the organization id, with no warning; as shipped, the
# placeholder id is refused, naming the file and the key.
if [ "$(basename "$binary")" = cerebras-metrics-proxy ]; then
  install -d -m 0700 "$tmp/credentials"
  printf 'test-key\n' >"$tmp/credentials/api-key"
  chmod 0600 "$tmp/credentials/api-key"
  check() {
    (cd "$tmp" && env -u CEREBRAS_API_KEY CREDENTIALS_DIRECTORY="$tmp/credentials" \
      "$binary" --config.file="$1" --check-config 2>&1)
  }
  if out=$(check "$root/packaging/systemd/config.yml"); then
    fail "the shipped placeholder organization id passes --check-config: $out"
  fi
  printf '%s\n' "$out" | grep -Fq "packaging/systemd/config.yml: upstreams[0].url: organization id \"org_REPLACE_ME\" is a placeholder" \
    || fail "no placeholder error naming the file and key: $out"
  sed 's/org_REPLACE_ME/org_abc123/' "$root/packaging/systemd/config.yml" >"$tmp/config.yml"
  out=$(check "$tmp/config.yml") \
    || fail "packaging/systemd/config.yml with an organization id does not pass --check-config with LoadCredential's layout: $out"
  if printf '%s\n' "$out" | grep -qi warning; then fail "warnings on the shipped defaults: $out"; fi
fi
echo "PASS: $unit_name verifies with ExecStart=$binary"
