#!/usr/bin/env bash
# The super-resolution training steps on this machine's CPU: gancu's plan against Debian's PyTorch (python3-torch),
# same networks (tools/pytorch_srgan.py), step structure, batch and thread count, each the median of N steps after
# warm-up, on synthetic data. srgan's content loss runs through VGG19 (random weights: the cost does not depend on
# them) cut at phi5,4. Prints each pair of JSON lines and the ratio.
#   bench/sr_cpu_vs_pytorch.sh [build-dir] [residual-blocks] [crop] [batch-size] [steps] [bn|no-bn]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
blocks=${2:-16}
crop=${3:-96}
batch=${4:-16}
steps=${5:-10}
norm=()
case "${6:-bn}" in bn) ;; no-bn) norm=(--no-batch-norm) ;; *) echo "batch norm: bn or no-bn, not $6" >&2; exit 2 ;; esac
threads=$(nproc)
vgg=$(mktemp --suffix=.safetensors)
trap 'rm -f "$vgg"' EXIT
/usr/bin/python3 tools/export_vgg19.py "$vgg" --random > /dev/null
for model in srresnet srgan; do
  extra=("${norm[@]}")
  [ "$model" = srgan ] && extra+=(--vgg19 "$vgg")
  ours=$(OPENBLAS_NUM_THREADS=$threads "$build/gan" bench --model "$model" --device cpu --residual-blocks "$blocks" \
           --crop "$crop" --batch-size "$batch" --steps "$steps" --warmup 2 "${extra[@]}")
  theirs=$(/usr/bin/python3 bench/pytorch/sr_step.py --model "$model" --device cpu --residual-blocks "$blocks" \
             --crop "$crop" --batch-size "$batch" --steps "$steps" --warmup 2 --threads "$threads" "${norm[@]}")
  echo "$ours"
  echo "$theirs"
  /usr/bin/python3 - "$ours" "$theirs" "$blocks" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{a['model']}{'' if b['batch_norm'] else ' (no batch norm)'}: gancu {a['median_step_ms']:.0f} ms vs {b['framework']} {b['median_step_ms']:.0f} ms per step: "
      f"ratio {b['median_step_ms'] / a['median_step_ms']:.2f}x (B={sys.argv[3]}, {a['image_size']}x{a['image_size']} "
      f"HR crops, batch {a['batch_size']}, {b['threads']} threads)")
PY
done
