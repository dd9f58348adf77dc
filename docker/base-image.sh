#!/usr/bin/env bash
# Makes the debian:bookworm-slim base image from Debian's own packages, for
# machines that reach the Debian archive but no container registry (offline CI,
# air-gapped hosts). Idempotent: an existing image is kept.
#   docker/base-image.sh [IMAGE]          (root; podman, debootstrap)
# The mirror is the one apt is configured with, so a local mirror or proxy
# configured for apt works here too.
set -euo pipefail
image=${1:-debian:bookworm-slim}
[ "$(id -u)" -eq 0 ] || { echo "base-image.sh: needs root (debootstrap)" >&2; exit 1; }

# Several test processes may want the image at once: one builds, the others wait.
cache=${CMP_IMAGE_CACHE:-/var/tmp/cmp-images}
mkdir -p "$cache"
exec 9>"$cache/base-image.lock"
flock 9
if podman image exists "$image"; then
  exit 0
fi

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # deb822 (*.sources, Debian 12's default) first, then one-line sources.list.
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
             | awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }')
fi
mirror=${mirror:-http://deb.debian.org/debian}

root="$cache/bookworm-rootfs"
rm -rf "$root"
echo "base-image.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
  || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
# What the official slim image carries: the same mirror for apt inside
# builds, no caches, no docs.
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$mirror" >"$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$image" >/dev/null
rm -rf "$root"
echo "base-image.sh: imported $image" >&2
