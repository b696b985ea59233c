#!/usr/bin/env bash
# PyTorch interoperability: gancu's generator.safetensors loads into the PyTorch DCGAN module of tools/pytorch_dcgan.py
# with strict=True (discriminator too), and both produce the same images from the same latent vectors
# (relative L2 ≤ 1e-5: float32 on both sides, different summation orders). Skips (exit 77) without Debian's torch.
#   tests/pytorch_interop.sh path/to/gan source-dir
set -euo pipefail
gan=$1
src=$2
python=/usr/bin/python3
if ! "$python" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 has no torch (Debian's python3-torch): PyTorch interoperability not checked"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$gan" train --data /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --steps 3 --batch-size 8 --ngf 8 \
  --ndf 8 --nz 16 --out "$dir/run" --sample-every 0 --no-progress 2>/dev/null
"$python" -c "import numpy as np; np.save('$dir/z.npy', np.random.RandomState(0).randn(16, 16).astype(np.float32))"
"$gan" sample --checkpoint "$dir/run/generator.safetensors" --z "$dir/z.npy" --raw "$dir/gancu.npy" --out "$dir/g.png" 2>/dev/null
"$python" "$src/tools/pytorch_dcgan.py" "$dir/run/generator.safetensors" --z "$dir/z.npy" --out "$dir/torch.npy"
"$python" - "$dir" "$src" <<'PY'
import sys, numpy as np
sys.path.insert(0, sys.argv[2] + "/tools")
import pytorch_dcgan as m
d = sys.argv[1]
a, b = np.load(d + "/gancu.npy"), np.load(d + "/torch.npy")
err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
state, meta = m.load_safetensors(d + "/run/discriminator.safetensors")
import json
c = json.loads(meta["config"])
m.dcgan_discriminator(c["ndf"], c["channels"], c["image_size"]).load_state_dict(state, strict=True)
print(f"generator output gancu vs PyTorch: relative L2 {err:.2e} (tolerance 1e-5); discriminator loads strictly")
sys.exit(0 if a.shape == b.shape and err <= 1e-5 else 1)
PY
