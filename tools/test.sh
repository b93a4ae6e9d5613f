#!/usr/bin/env bash
# Runs every test: installs what is missing, builds with g++ and runs the
# suite, then builds with clang under ASan+UBSan and runs it again.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh

jobs=$(nproc)
cmake -S . -B build/gcc -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++
cmake --build build/gcc -j "$jobs"
ctest --test-dir build/gcc --output-on-failure -j "$jobs"
# The simulator's CI figures (10,000 client-hours): ctest keeps a passing
# test's output only in its log.
echo "test: the CI simulation run (SimScale):"
sed -n '/Test: SimScale.ZeroViolationsOverManyOutages/,/<end of output>/p' build/gcc/Testing/Temporary/LastTest.log |
  grep -E '^(resilink sim|trace_hash|simulated|faults|engines|qos|non-qos|v1 limits|detection|liveness|violations|wall)' || true

cmake -S . -B build/sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
  -DRESILINK_SANITIZE=ON
cmake --build build/sanitize -j "$jobs"
# The microcontroller build does not depend on the host compiler: run it once.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/sanitize --output-on-failure -j "$jobs" -LE mcu

# The fuzz targets' committed corpus is replayed by ctest above
# (fuzz_corpus_*); now each target is fuzzed for 60 s from it.
if [ -n "$(ls fuzz/open | grep -v '^README')" ]; then
  echo "test: fuzz/open/ holds unfixed findings: $(ls fuzz/open | grep -v '^README' | tr '\n' ' ')" >&2
  exit 1
fi
tools/fuzz.sh 60
