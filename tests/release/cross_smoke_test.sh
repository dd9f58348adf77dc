#!/usr/bin/env bash
# CI's cheap stand-in for scripts/release.sh (which needs more than CI's time
# budget): the arm64 cross build of one library with its unit tests, run under
# qemu-user-static through CMAKE_CROSSCOMPILING_EMULATOR. It proves the
# toolchain file, the :arm64 libraries (every find_package of the project is
# configured) and the emulator wiring. scripts/test.sh installs what it needs
# (scripts/cross-deps.sh).
# Usage: cross_smoke_test.sh REPO_ROOT WORK_DIR       exit 0 pass, 1 fail, 77 skip
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: cross_smoke_test.sh REPO_ROOT WORK_DIR" >&2; exit 2; }
repo=$1 work=$2
skip() { echo "SKIP: $*"; exit 77; }
command -v aarch64-linux-gnu-g++ >/dev/null || skip "no aarch64-linux-gnu-g++ (scripts/cross-deps.sh installs it)"
command -v qemu-aarch64-static >/dev/null || skip "no qemu-aarch64-static (scripts/cross-deps.sh installs it)"
dpkg-query -W -f='${Status}' libboost1.81-dev:arm64 2>/dev/null | grep -q 'install ok installed' \
  || skip "no :arm64 libraries (scripts/cross-deps.sh installs them)"
yaml=$work/yaml-cpp-dev/usr/lib/aarch64-linux-gnu/cmake/yaml-cpp
[ -f "$yaml/yaml-cpp-config.cmake" ] || skip "no unpacked libyaml-cpp-dev:arm64 in $work (scripts/cross-deps.sh $work)"

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
t0=$(date +%s)
cmake -S "$repo" -B "$work/build" --toolchain "$repo/cmake/toolchain-aarch64-linux-gnu.cmake" \
      -DCMAKE_BUILD_TYPE=Release -DCMP_WERROR=ON -DCMP_REQUIRE_TESTS=ON -DCMP_BUILD_BENCH=OFF \
      -Dyaml-cpp_DIR="$yaml" "${launcher[@]}" >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 --target cmp_exposition_tests >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; exit 1; }
file "$work/build/tests/cmp_exposition_tests" | tee /dev/stderr | grep -q 'ARM aarch64' \
  || { echo "FAIL: the test binary is not an arm64 executable"; exit 1; }
# Only this target is built; the other test executables are placeholders.
ctest --test-dir "$work/build" -E '_NOT_BUILT$' --output-on-failure -j2 | tail -n 3
echo "arm64 cross build + emulated tests of cmp_exposition: $(( $(date +%s) - t0 )) s"
