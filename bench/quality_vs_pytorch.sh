#!/usr/bin/env bash
# Sample quality after the same number of steps: gancu's `gan train` (CPU) against PyTorch's DCGAN recipe (Debian's
# python3-torch), both on Fashion-MNIST's 60,000 training images with the same recipe, measured on the 10,000
# held-out test images by bench/sample_quality.py (pixel-space MMD, mean image, variance, nearest-neighbour ratio).
#   bench/quality_vs_pytorch.sh [build-dir] [steps] [seeds]
# Defaults: build, 500 steps, seeds "1 2". Each seed is one training run per framework.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-500}
seeds=${3:-1 2}
data=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
threads=$(nproc)
sets=()
for seed in $seeds; do
  OPENBLAS_NUM_THREADS=$threads "$build/gan" train --data "$data/train-images-idx3-ubyte.gz" --steps "$steps" \
    --seed "$seed" --sample-every 0 --checkpoint-every 0 --out "$work/gancu-$seed" --no-progress 2>&1 | tail -n 1
  "$build/gan" sample --checkpoint "$work/gancu-$seed" --n 2000 --seed 99 --out "$work/gancu-$seed.png" \
    --raw "$work/gancu-$seed.npy" >/dev/null
  /usr/bin/python3 bench/pytorch/dcgan_train.py --data "$data/train-images-idx3-ubyte.gz" --steps "$steps" \
    --seed "$seed" --threads "$threads" --out "$work/torch-$seed.npy" 2>&1 | tail -n 1
  sets+=("gancu seed $seed=$work/gancu-$seed.npy" "pytorch seed $seed=$work/torch-$seed.npy")
done
echo "DCGAN-32 on Fashion-MNIST (train images), $steps steps, batch 64; samples vs held-out test images:"
/usr/bin/python3 bench/sample_quality.py --data "$data/t10k-images-idx3-ubyte.gz" "${sets[@]}"
