#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/packages/<set>.txt that are
# not installed yet. Idempotent and quiet when everything is there.
# A name with an architecture (libssl-dev:arm64) makes dpkg accept that
# architecture first (multiarch, for cross builds).
# Usage: scripts/deps.sh build|runtime|test|release|cross-arm64 [...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- build
wanted=()
for set in "$@"; do
  list="$here/packages/$set.txt"
  [ -f "$list" ] || { echo "deps.sh: no package set '$set' ($list)" >&2; exit 1; }
  while read -r pkg extra _; do
    case "$pkg" in ''|'#'*) continue ;; esac
    # `pkg command=CMD`: CMD on the PATH already satisfies it (NodeSource's
    # nodejs bundles npm, and conflicts with Debian's npm package).
    if [[ ${extra:-} == command=* ]] && command -v "${extra#command=}" >/dev/null; then continue; fi
    wanted+=("$pkg")
  done <"$list"
done
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
for pkg in "${missing[@]}"; do
  case "$pkg" in
    *:*)
      arch=${pkg##*:}
      if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        $sudo dpkg --add-architecture "$arch"
      fi ;;
  esac
done
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
