#!/usr/bin/env bash
# Builds every libFuzzer target (fuzz/<name>_fuzz.cpp) with clang and runs
# each for SECONDS (default 60) on its seed corpus fuzz/corpus/<name>/.
# Fails on the first finding; the crashing input is kept in
# fuzz/findings/<name>/ (git-ignored). New corpus entries go to the build
# directory, not into the repository.
# Environment: CXX (default clang++-14, else clang++), CMP_FUZZ_BUILD_DIR
# (default build-fuzz), CMP_FUZZ_TARGETS (space-separated names, default
# all), JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${CMP_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}

if [ -z "${CXX:-}" ]; then
  if command -v clang++-14 >/dev/null; then CXX=clang++-14; else CXX=clang++; fi
fi
command -v "$CXX" >/dev/null || { echo "fuzz.sh: $CXX not found (Debian: clang-14 libclang-rt-14-dev)" >&2; exit 1; }

names=()
for src in fuzz/*_fuzz.cpp; do
  [ -e "$src" ] || continue
  n=$(basename "$src" .cpp)
  n=${n%_fuzz}
  if [ -n "${CMP_FUZZ_TARGETS:-}" ] && [[ " $CMP_FUZZ_TARGETS " != *" $n "* ]]; then continue; fi
  names+=("$n")
done
[ ${#names[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz targets selected" >&2; exit 1; }

CXX=$CXX cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMP_BUILD_FUZZ=ON \
  -DCMP_BUILD_TESTS=OFF -DCMP_BUILD_BENCH=OFF >/dev/null
targets=()
for n in "${names[@]}"; do targets+=("cmp_${n}_fuzz"); done
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target per core at a time: on two cores, four 60 s targets take two minutes.
run_one() {
  local n=$1
  local work="$build/corpus/$n" findings="fuzz/findings/$n"
  mkdir -p "$work" "$findings"
  local seeds=()
  [ -d "fuzz/corpus/$n" ] && seeds+=("fuzz/corpus/$n")
  if ! "$build/fuzz/cmp_${n}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$findings/" "$work" "${seeds[@]}" \
        2>"$build/fuzz-$n.log"; then
    tail -n 60 "$build/fuzz-$n.log" >&2
    echo "fuzz.sh: finding in $n; input kept in $findings/" >&2
    return 1
  fi
  printf '%s: %s\n' "$n" "$(grep -E '^stat::number_of_executed_units|^stat::new_units_added' \
                                "$build/fuzz-$n.log" | tr '\n' ' ')"
}
printf '\n==> fuzzing %s for %s s each, %s at a time\n' "${names[*]}" "$seconds" "$jobs"
pids=()
failed=0
for n in "${names[@]}"; do
  run_one "$n" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ $failed -eq 0 ] || exit 1
echo "fuzz.sh: no findings"
