#!/usr/bin/env bash
# Makes the debian:bookworm-slim base image from Debian's own packages, for
# machines that reach the Debian archive but no container registry (offline CI,
# air-gapped hosts). Idempotent: an existing image is kept.
#   docker/base-image.sh [IMAGE [ARCH]]     (root; podman, debootstrap)
# ARCH (a Debian architecture, default the host's) other than the host's needs
# qemu-user-static registered with binfmt_misc (scripts/cross-deps.sh):
# debootstrap's second stage runs the foreign dpkg inside the new root.
# The mirror is the one apt is configured with, so a local mirror or proxy
# configured for apt works here too.
set -euo pipefail
image=${1:-debian:bookworm-slim}
arch=${2:-$(dpkg --print-architecture)}
[ "$(id -u)" -eq 0 ] || { echo "base-image.sh: needs root (debootstrap)" >&2; exit 1; }

# Several test processes may want the image at once: one builds, the others wait.
# A foreign architecture has a lock of its own: its (emulated) debootstrap is
# slow, and must not hold up the tests that only need the host's image.
cache=${CMP_IMAGE_CACHE:-/var/tmp/cmp-images}
mkdir -p "$cache"
lock=base-image.lock
[ "$arch" = "$(dpkg --print-architecture)" ] || lock=base-image-$arch.lock
exec 9>"$cache/$lock"
flock 9
if podman image exists "$image"; then
  have=$(podman image inspect --format '{{.Architecture}}' "$image")
  [ "$have" = "$arch" ] && exit 0
  echo "base-image.sh: $image is $have, not $arch; pass another IMAGE name for $arch" >&2
  exit 1
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

root="$cache/bookworm-rootfs-$arch"
rm -rf "$root"
echo "base-image.sh: debootstrap bookworm ($arch) from $mirror" >&2
debootstrap --arch="$arch" --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap-$arch.log" 2>&1 \
  || { tail -n 20 "$cache/debootstrap-$arch.log" >&2; exit 1; }
# What the official slim image carries: the same mirror for apt inside
# builds, no caches, no docs.
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$mirror" >"$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar --numeric-owner -C "$root" -c . | podman import --arch "$arch" --change 'CMD ["bash"]' - "$image" >/dev/null
rm -rf "$root"
echo "base-image.sh: imported $image ($arch)" >&2
