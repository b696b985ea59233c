#!/usr/bin/env bash
# Builds everything the tests need (CUDA kernels and their tests included when nvcc is present; warnings are errors)
# and runs every test with ctest; then builds the host code again with AddressSanitizer and UBSan and runs the CPU
# tests under them; then fuzzes every file reader for a bounded time (GANCU_FUZZ_SECONDS per target, 25 by default).
# GPU tests skip, saying so, on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_debian.sh
jobs=$(nproc)

cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANCU_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"
(cd build-test && ctest --output-on-failure -j"$jobs")
if [ -x build-test/gancu_gpu_tests ]; then
  echo "GPU tests on this machine (they skip without a CUDA device):"
  build-test/gancu_gpu_tests --gtest_brief=1 2>&1 | grep -E "^\[ +(SKIPPED|PASSED|FAILED) +\] [0-9]+ tests?" || true
fi

# Host code under AddressSanitizer + UBSan (no CUDA: the sanitizers cover the CPU paths).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGANCU_CUDA=OFF -DGANCU_SANITIZE=ON \
  -DGANCU_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan --target gancu_tests -j"$jobs"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 build-asan/gancu_tests --gtest_brief=1

# Every reader of outside bytes under libFuzzer with ASan + UBSan (tests/fuzz/), one target after another: any crash,
# leak, hang or oversized allocation fails. Their seed corpora were already replayed by gancu_tests above.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DGANCU_FUZZ=ON -DGANCU_CUDA=OFF -DGANCU_WERROR=ON >/dev/null
cmake --build build-fuzz --target fuzz_all -j"$jobs"
tests/fuzz/run_fuzzers.sh build-fuzz "${GANCU_FUZZ_SECONDS:-25}"
