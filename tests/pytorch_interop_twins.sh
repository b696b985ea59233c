#!/usr/bin/env bash
# The PyTorch twins in tools/ checked on their own, without a gancu run of their models (tools/pytorch_selftest.py:
# strict loading of files written as gancu writes them, the architectures against forward passes written by hand),
# and a PyTorch-made DCGAN generator sampled by gancu. Skips (exit 77) without Debian's torch.
#   tests/pytorch_interop_twins.sh path/to/gan source-dir
set -euo pipefail
gan=$1
src=$2
python=/usr/bin/python3
if ! "$python" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIPPED: /usr/bin/python3 has no torch (Debian's python3-torch): the PyTorch twins not checked"
  exit 77
fi
exec "$python" "$src/tools/pytorch_selftest.py" --gan "$gan"
