#!/usr/bin/env bash
# The main job: set up, build (Release), and train DCGAN on Fashion-MNIST on the CPU. Extra arguments go to
# `gan train` (see `build/gan train --help`); with none, it writes runs/train/{samples.png, losses.png, ...}.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_debian.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGANCU_BUILD_TESTS=OFF -DGANCU_BUILD_BENCH=OFF >/dev/null
cmake --build build --target gan -j"$(nproc)"
exec build/gan train "$@"
