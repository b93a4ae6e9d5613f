#!/usr/bin/env bash
# Fuzzes every target in fuzz/ with libFuzzer under ASan+UBSan for SECONDS each
# (default 60), on a scratch copy of the committed corpus (fuzz/corpus/<target>),
# so the repository is never modified. Prints each target's figures; exits
# non-zero on any crash, leak, timeout or invariant failure (the reproducer is
# kept in build/fuzz/findings/<target>/).
#
#   tools/fuzz.sh [SECONDS]
# Reproduce a finding: build/fuzz/fuzz/<target>_fuzz build/fuzz/findings/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
targets=(line_decoder engine engine_pair handshake)

cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DRESILINK_FUZZ=ON -DRESILINK_BUILD_TESTS=OFF >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target fuzz_all

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=()
summary=()
for t in "${targets[@]}"; do
  corpus="$scratch/$t"
  mkdir -p "$corpus" "build/fuzz/findings/$t"
  cp fuzz/corpus/"$t"/* "$corpus"/
  seeds=$(ls "$corpus" | wc -l)
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  log="build/fuzz/findings/$t/fuzz.log"
  echo "fuzz: $t for ${seconds}s from $seeds seeds"
  rc=0
  build/fuzz/fuzz/"${t}_fuzz" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="build/fuzz/findings/$t/" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  size=$(ls "$corpus" | wc -l)
  line="$t: rc=$rc execs=${execs:-?} (${rate:-?}/s) ${cov:-cov: ?} corpus=$seeds->$size inputs"
  summary+=("$line")
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz: $t FAILED (rc=$rc); log: $log" >&2
    grep -E -A3 'invariant failed|ERROR: |SUMMARY|runtime error' "$log" | head -30 >&2 || true
  fi
done

echo "fuzz: figures (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in build/fuzz/findings/)" >&2
  exit 1
fi
echo "fuzz: all targets clean"
