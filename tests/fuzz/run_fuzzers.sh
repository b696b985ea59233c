#!/usr/bin/env bash
# Runs each libFuzzer target (built with -DGANCU_FUZZ=ON, tests/fuzz/fuzz.cmake) for a bounded time, one after the
# other, and fails on the first crash, sanitizer report, leak, timeout (an input taking over 10 s) or allocation over
# the limits: a single malloc over 128 MB, or 512 MB resident. Prints the executions per target at the end.
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET [TARGET ...]]      (default: 25 s, every target)
#
# The seeds in tests/fuzz/corpus/<target>/ are read, never written: new inputs go to BUILD_DIR/fuzz-corpus/<target>/,
# which later runs start from. A failing input is saved as BUILD_DIR/fuzz-artifacts/<target>-crash-… (or -leak-,
# -timeout-, -oom-); reproduce it with BUILD_DIR/fuzz_<target> <that file>.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: $0 BUILD_DIR [SECONDS_PER_TARGET [TARGET ...]]}
seconds=${2:-25}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for exe in "$build"/fuzz_*; do targets+=("${exe##*/fuzz_}"); done
fi

mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
# ASan's default 256 MB quarantine of freed memory would take half the 512 MB resident limit on its own.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1"
# The harness writes its input files under TMPDIR; keep them in the build folder.
export TMPDIR="$build/fuzz-tmp"
mkdir -p "$TMPDIR"
summary=()
for target in "${targets[@]}"; do
  exe="$build/fuzz_$target"
  [ -x "$exe" ] || { echo "run_fuzzers: $exe is missing (build the fuzz_all target)" >&2; exit 2; }
  [ -d "tests/fuzz/corpus/$target" ] || { echo "run_fuzzers: no seed corpus tests/fuzz/corpus/$target" >&2; exit 2; }
  mkdir -p "$build/fuzz-corpus/$target"
  log="$build/fuzz-logs/$target.log"
  echo "fuzz_$target: ${seconds} s"
  status=0
  # -jobs/-workers stay at 1: the CI machine has two cores.
  "$exe" "$build/fuzz-corpus/$target" "tests/fuzz/corpus/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=512 -malloc_limit_mb=128 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$target-" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "run_fuzzers: fuzz_$target failed (exit $status); log $log, input in $build/fuzz-artifacts/" >&2
    exit 1
  fi
  summary+=("$(printf '%-22s %12s executions in %s s' "$target" "${runs:-?}" "$seconds")")
done
printf '%s\n' "${summary[@]}"
