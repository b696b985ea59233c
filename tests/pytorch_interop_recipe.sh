#!/usr/bin/env bash
# PyTorch interoperability of a recipe's networks, as tests/pytorch_interop.sh checks DCGAN's: gancu trains a few steps
# on Fashion-MNIST's test set, its generator.safetensors loads into the PyTorch twin in tools/ with strict=True
# (discriminator too), and both give the same images from the same latent vectors (and classes), relative L2 ≤ 1e-5;
# the same generator file with random weights and batch-norm statistics, written by PyTorch, too.
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
# Samples generator file $1 with gancu and with the PyTorch twin into gancu_$2.npy and torch_$2.npy.
sample_both() {
  local labels=()
  if ((conditional)); then labels=(--labels "$dir/labels_int64.npy"); fi
  run "$gan" sample --checkpoint "$1" --z "$dir/z.npy" "${labels[@]}" --raw "$dir/gancu_$2.npy" --out "$dir/g.png"
  run "$python" "$src/tools/$module.py" "$1" --z "$dir/z.npy" "${labels[@]}" --out "$dir/torch_$2.npy"
}
sample_both "$dir/run/generator.safetensors" trained
if ((conditional)); then
  run "$gan" sample --checkpoint "$dir/run/generator.safetensors" --z "$dir/z.npy" --labels "$dir/labels_float32.npy" \
    --raw "$dir/gancu_trained_float32.npy" --out "$dir/g.png"
fi
# Three steps leave batch norm's running statistics near their initial values, so the same generator file with
# random weights and statistics (written by PyTorch, gancu's metadata kept) is sampled too: PyTorch -> gancu.
"$python" - "$dir" "$src" "$module" <<'PY'
import importlib, sys
d, src, module = sys.argv[1:4]
sys.path.insert(0, src + "/tools")
import pytorch_selftest as st
twin = importlib.import_module(module)
g, _ = twin.load_generator(d + "/run/generator.safetensors")
meta = st.dcgan.load_safetensors(d + "/run/generator.safetensors")[1]
st.save_safetensors(d + "/random.safetensors", st.randomize(g, 7).state_dict(), meta)
PY
sample_both "$dir/random.safetensors" random
"$python" - "$dir" "$src" "$module" <<'PY'
import importlib, os, sys
import numpy as np
d, src, module = sys.argv[1:4]
sys.path.insert(0, src + "/tools")
twin = importlib.import_module(module)
ok = True
for gancu, torch, what in (("trained", "trained", "trained weights"),
                           ("trained_float32", "trained", "trained weights, float32 labels"),
                           ("random", "random", "random weights and statistics")):
    if not os.path.exists(f"{d}/gancu_{gancu}.npy"):
        continue
    got, want = np.load(f"{d}/gancu_{gancu}.npy"), np.load(f"{d}/torch_{torch}.npy")
    same_shape = got.shape == want.shape
    err = float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)) if same_shape else float("inf")
    print(f"{module}: generator output ({what}) gancu vs PyTorch: shape {list(got.shape)} vs {list(want.shape)}, "
          f"relative L2 {err:.2e} (tolerance 1e-5)")
    ok = ok and same_shape and err <= 1e-5
twin.load_discriminator(d + "/run/discriminator.safetensors")  # strict=True: raises on any missing or extra tensor
print(f"{module}: discriminator loads strictly")
sys.exit(0 if ok else 1)
PY
