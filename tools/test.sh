#!/usr/bin/env bash
# Builds everything the tests need (CUDA kernels and their tests included when nvcc is present; warnings are errors)
# and runs every test with ctest. GPU tests skip, saying so, on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_debian.sh
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANCU_WERROR=ON >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j"$(nproc)"
# Say plainly how many GPU tests were skipped for want of a device.
if [ -x ./gancu_gpu_tests ]; then
  ./gancu_gpu_tests --gtest_brief=1 2>&1 | grep -E "SKIPPED|PASSED|FAILED" | tail -n 3 || true
fi
