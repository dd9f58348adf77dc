#!/usr/bin/env bash
# Installs what is missing (Debian 12), builds, and runs every test:
#   1. Release build (-Werror) and ctest: unit, integration, packaging checks
#   2. the unit and integration tests again under ASan + UBSan (LeakSanitizer on)
#   3. each libFuzzer target for CMP_FUZZ_SECONDS (default 60)
# Environment: CMP_SKIP_SANITIZE=1 / CMP_SKIP_FUZZ=1 skip stages 2 / 3
# (local iteration only; CI runs everything). JOBS overrides the parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${JOBS:-$(nproc)}

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
scripts/deps.sh build test
# The arm64 cross toolchain and :arm64 libraries for the cross_arm64_smoke test.
scripts/cross-deps.sh build/cross-arm64 >/dev/null

# ccache (when installed) makes rebuilds on the same machine cheap; a fresh
# machine just builds everything.
# Paths relative to the checkout, so that another clone of the repository on
# the same machine (CI clones afresh) hits the same cache entries.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
fi

step "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMP_WERROR=ON -DCMP_REQUIRE_TESTS=ON \
      "${launcher[@]}" >/dev/null
cmake --build build -j"$jobs"

step "tests (release)"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600

if [ "${CMP_SKIP_SANITIZE:-0}" != 1 ]; then
  step "ASan + UBSan build"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
        -DCMP_SANITIZE=ON -DCMP_WERROR=ON -DCMP_REQUIRE_TESTS=ON -DCMP_BUILD_BENCH=OFF \
        "${launcher[@]}" >/dev/null
  cmake --build build-asan -j"$jobs"
  # Packaging checks and the real-Prometheus suites run no new C++ paths:
  # they carry the no_sanitize label and run once, above.
  step "tests (ASan + UBSan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 900 \
          --label-exclude no_sanitize
fi

if [ "${CMP_SKIP_FUZZ:-0}" != 1 ] && [ -x scripts/fuzz.sh ]; then
  step "fuzzing (${CMP_FUZZ_SECONDS:-60} s per target)"
  scripts/fuzz.sh "${CMP_FUZZ_SECONDS:-60}"
fi

step "all tests passed"
