#!/usr/bin/env bash
# PyTorch interoperability of a recipe's networks, as tests/pytorch_interop.sh checks DCGAN's: gancu trains a few steps
# on Fashion-MNIST's test set, its generator.safetensors loads into the PyTorch twin in tools/ with strict=True
# (discriminator too), and both give the same images from the same latent vectors (and classes), relative L2 ≤ 1e-5.
# Skips (exit 77) without Debian's torch or Fashion-MNIST, and while `gan train` has no --model.
#   tests/pytorch_interop_recipe.sh path/to/gan source-dir mlp-gan|conditional-dcgan
set -euo pipefail
gan=$1
src=$2
model=$3
python=/usr/bin/python3
data=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
case "$model" in
  mlp-gan) module=pytorch_mlp_gan; train_flags=(--image-size 28) conditional=0 ;;
  conditional-dcgan) module=pytorch_conditional_dcgan; train_flags=(--ngf 8 --ndf 8 --d-dropout 0.3) conditional=1 ;;
  *) echo "usage: $0 path/to/gan source-dir mlp-gan|conditional-dcgan" >&2; exit 2 ;;
esac
if ! "$python" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 has no torch (Debian's python3-torch): $model PyTorch interoperability not checked"
  exit 77
fi
if [[ ! -f $data ]]; then
  echo "SKIPPED: $data is not installed (Debian package dataset-fashion-mnist): $model interoperability not checked"
  exit 77
fi
if ! help=$("$gan" train --help 2>&1); then
  echo "FAILED: $gan train --help"
  echo "$help"
  exit 1
fi
if ! grep -q -- '--model' <<<"$help"; then
  echo "SKIPPED: $gan train has no --model option yet (the recipe layer): $model interoperability not checked"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Runs a command with its messages kept, and shows them only when it fails.
run() {
  if ! "$@" >"$dir/log" 2>&1; then
    echo "FAILED: $*"
    cat "$dir/log"
    exit 1
  fi
}
run "$gan" train --model "$model" --data "$data" --steps 3 --batch-size 8 --nz 16 "${train_flags[@]}" --out "$dir/run" \
  --sample-every 0 --no-progress
"$python" - "$dir" <<'PY'
import sys, numpy as np
d = sys.argv[1]
np.save(d + "/z.npy", np.random.RandomState(0).randn(16, 16).astype(np.float32))
labels = np.arange(16) % 10  # every class of Fashion-MNIST, then some again
np.save(d + "/labels_int64.npy", labels.astype(np.int64))
np.save(d + "/labels_float32.npy", labels.astype(np.float32))
PY
g="$dir/run/generator.safetensors"
if ((conditional)); then
  run "$gan" sample --checkpoint "$g" --z "$dir/z.npy" --labels "$dir/labels_int64.npy" --raw "$dir/gancu.npy" --out "$dir/g.png"
  run "$gan" sample --checkpoint "$g" --z "$dir/z.npy" --labels "$dir/labels_float32.npy" --raw "$dir/gancu_float32.npy" \
    --out "$dir/g.png"
  run "$python" "$src/tools/$module.py" "$g" --z "$dir/z.npy" --labels "$dir/labels_int64.npy" --out "$dir/torch.npy"
else
  run "$gan" sample --checkpoint "$g" --z "$dir/z.npy" --raw "$dir/gancu.npy" --out "$dir/g.png"
  run "$python" "$src/tools/$module.py" "$g" --z "$dir/z.npy" --out "$dir/torch.npy"
fi
"$python" - "$dir" "$src" "$module" <<'PY'
import importlib, os, sys
import numpy as np
d, src, module = sys.argv[1:4]
sys.path.insert(0, src + "/tools")
twin = importlib.import_module(module)
want = np.load(d + "/torch.npy")
ok = True
for name in ("gancu.npy", "gancu_float32.npy"):
    if not os.path.exists(d + "/" + name):
        continue
    got = np.load(d + "/" + name)
    err = float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)) if got.shape == want.shape else float("inf")
    print(f"{module}: generator output gancu ({name}) vs PyTorch: shape {list(got.shape)} vs {list(want.shape)}, "
          f"relative L2 {err:.2e} (tolerance 1e-5)")
    ok = ok and got.shape == want.shape and err <= 1e-5
twin.load_discriminator(d + "/run/discriminator.safetensors")  # strict=True: raises on any missing or extra tensor
print(f"{module}: discriminator loads strictly")
sys.exit(0 if ok else 1)
PY
