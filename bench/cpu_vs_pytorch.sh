#!/usr/bin/env bash
# The DCGAN training step on this machine's CPU: gancu's plan against Debian's PyTorch (python3-torch), same
# architecture, batch and thread count, each the median of N steps after warm-up. Prints both JSON lines and the ratio.
#   bench/cpu_vs_pytorch.sh [build-dir] [image-size] [channels] [batch-size] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
size=${2:-32}
channels=${3:-1}
batch=${4:-64}
steps=${5:-10}
threads=$(nproc)
ours=$(OPENBLAS_NUM_THREADS=$threads "$build/gan" bench --device cpu --image-size "$size" --channels "$channels" \
         --batch-size "$batch" --steps "$steps")
theirs=$(/usr/bin/python3 bench/pytorch/dcgan_step.py --device cpu --image-size "$size" --channels "$channels" \
         --batch-size "$batch" --steps "$steps" --threads "$threads")
echo "$ours"
echo "$theirs"
/usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"gancu {a['images_per_s']:.1f} img/s vs {b['framework']} {b['images_per_s']:.1f} img/s: "
      f"ratio {a['images_per_s'] / b['images_per_s']:.2f}x (DCGAN-{a['image_size']}, {a['channels']} ch, batch {a['batch_size']})")
PY
