#!/usr/bin/env bash
# The DCGAN training step on one GPU, gancu against PyTorch, in one command: for DCGAN-64 at batch 128 and DCGAN-32
# at batch 64 (3 channels), gancu with custom, cuDNN and auto (per-shape) convolutions, each replayed as a CUDA graph
# and launched call by call, against PyTorch eager (cudnn.benchmark), channels_last, CUDA graph and torch.compile.
# Same architecture, init, losses, Adam and batch; TF32 convolutions on both sides (PyTorch's default). Each side
# times every step with CUDA events and reports the median after warm-up. Prints every JSON line and, per
# configuration, the ratio table (gancu images/s over PyTorch images/s).
#   bench/gpu_vs_pytorch.sh [build-dir] [steps] [configs]
# configs: space-separated size:batch pairs (default "64:128 32:64"). PYTHON picks the interpreter with CUDA PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-200}
configs=${3:-64:128 32:64}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for config in $configs; do
  size=${config%%:*}
  batch=${config##*:}
  results=$work/results-$size-$batch.jsonl
  for kernels in custom cudnn auto; do
    for graph in "" --no-cuda-graph; do
      # auto measures each shape once; the graph and call-by-call runs share the choices.
      "$build/gan" bench --device cuda --kernels "$kernels" --kernel-choices "$work/kernel_choices.json" --math tf32 \
        $graph --image-size "$size" --channels 3 --batch-size "$batch" --warmup 20 --steps "$steps" | tee -a "$results"
    done
  done
  "$python" bench/pytorch/dcgan_step.py --device cuda --image-size "$size" --channels 3 --batch-size "$batch" \
    --warmup 20 --steps "$steps" --modes eager,channels_last,cudagraph,compile | tee -a "$results"
  "$python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ours = [r for r in rows if r["framework"] == "gancu"]
theirs = [r for r in rows if r["framework"] != "gancu"]
print(f"\nDCGAN-{ours[0]['image_size']}, batch {ours[0]['batch_size']}: images/s ratio, gancu / PyTorch "
      f"(rows: gancu kernels/math/launch mode; columns: PyTorch mode)")
print(f"{'':32}" + "".join(f"{t['mode']:>15}" for t in theirs))
for o in ours:
    print(f"{o['mode'] + ' ' + str(round(o['images_per_s'])) + ' img/s':32}" +
          "".join(f"{o['images_per_s'] / t['images_per_s']:>14.2f}x" for t in theirs))
print("PyTorch img/s: " + ", ".join(f"{t['mode']} {t['images_per_s']:.0f}" for t in theirs) + f" ({theirs[0]['framework']})")
PY
done
if [[ -f $work/kernel_choices.json ]]; then
  echo
  echo "auto's kernel choices (per pass and shape, median ms of each kernel):"
  cat "$work/kernel_choices.json"
fi
