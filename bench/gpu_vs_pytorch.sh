#!/usr/bin/env bash
# The DCGAN training step on one GPU: gancu (custom and cuDNN convolutions, each with and without CUDA-graph replay)
# against PyTorch (eager with cudnn.benchmark, channels_last, CUDA graph, torch.compile), same architecture, batch and
# math (TF32 convolutions, PyTorch's default). Medians after warm-up; prints every JSON line and the ratio table.
#   bench/gpu_vs_pytorch.sh [build-dir] [image-size] [channels] [batch-size] [steps]
# Defaults: DCGAN-64, 3 channels, batch 128, 100 steps. Run DCGAN-32 with: bench/gpu_vs_pytorch.sh build 32 3 64
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
size=${2:-64}
channels=${3:-3}
batch=${4:-128}
steps=${5:-100}
python=${PYTHON:-python3}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for kernels in custom cudnn; do
  for graph in "" --no-cuda-graph; do
    "$build/gan" bench --device cuda --kernels "$kernels" --math tf32 $graph --image-size "$size" --channels "$channels" \
      --batch-size "$batch" --warmup 10 --steps "$steps" | tee -a "$results"
  done
done
"$python" bench/pytorch/dcgan_step.py --device cuda --image-size "$size" --channels "$channels" --batch-size "$batch" \
  --warmup 10 --steps "$steps" --modes eager,channels_last,cudagraph,compile | tee -a "$results"
"$python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ours = [r for r in rows if r["framework"] == "gancu"]
theirs = [r for r in rows if r["framework"] != "gancu"]
print("\nimages/s ratio, gancu / PyTorch (rows: gancu mode, columns: PyTorch mode)")
print(f"{'':28}" + "".join(f"{t['mode']:>16}" for t in theirs))
for o in ours:
    print(f"{o['mode'] + ' ' + str(round(o['images_per_s'])) + ' img/s':28}" +
          "".join(f"{o['images_per_s'] / t['images_per_s']:>15.2f}x" for t in theirs))
print("PyTorch img/s: " + ", ".join(f"{t['mode']} {t['images_per_s']:.0f}" for t in theirs))
PY
