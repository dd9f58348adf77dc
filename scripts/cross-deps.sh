#!/usr/bin/env bash
# Prepares a Debian 12 amd64 machine for the arm64 cross build and its
# emulated runs, and prints the extra CMake options that build needs:
#   opts=$(scripts/cross-deps.sh DIR)
#   cmake -S . -B build-arm64 --toolchain cmake/toolchain-aarch64-linux-gnu.cmake $opts ...
# 1. the packages of scripts/packages/release.txt and cross-arm64.txt
#    (the cross toolchain, qemu-user-static, the :arm64 libraries);
# 2. qemu's binfmt_misc handler, so that arm64 programs, containers and image
#    builds run on this amd64 kernel (update-binfmts mounts binfmt_misc if
#    needed; without it only CMAKE_CROSSCOMPILING_EMULATOR works);
# 3. libyaml-cpp-dev:arm64 unpacked into DIR (see cross-arm64.txt: it cannot
#    be installed beside the amd64 one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: cross-deps.sh DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)

"$here/deps.sh" release cross-arm64 >&2

if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v update-binfmts >/dev/null; then
  update-binfmts --enable qemu-aarch64 >&2 \
    || echo "cross-deps.sh: could not register qemu-aarch64 with binfmt_misc (arm64 images cannot be built here)" >&2
fi

yaml=$dir/yaml-cpp-dev
cmake_dir=$yaml/usr/lib/aarch64-linux-gnu/cmake/yaml-cpp
runtime=/usr/lib/aarch64-linux-gnu/libyaml-cpp.so.0.7.0
if [ ! -f "$cmake_dir/yaml-cpp-config.cmake" ]; then
  rm -rf "$yaml" "$dir/download" && mkdir -p "$yaml" "$dir/download"
  # The runtime library's version, so that headers and library match.
  version=$(dpkg-query -W -f='${Version}' libyaml-cpp0.7:arm64)
  # apt's sandbox user must be able to write the download directory.
  chmod 0777 "$dir/download"
  (cd "$dir/download" && apt-get download -qq "libyaml-cpp-dev:arm64=$version" >&2)
  dpkg-deb -x "$dir"/download/libyaml-cpp-dev_*_arm64.deb "$yaml"
  rm -rf "$dir/download"
fi
# The CMake files name the library next to themselves; it is the installed one.
ln -sf "$runtime" "$yaml/usr/lib/aarch64-linux-gnu/libyaml-cpp.so.0.7.0"
echo "-Dyaml-cpp_DIR=$cmake_dir"
