#!/usr/bin/python3
"""gancu's VGG19 features (models/vgg19.h) against torchvision's vgg19().features.

torchvision.models.vgg19(weights=None) with random weights from a fixed seed (biases drawn too, so that loading them
is checked), its features' state dict written as a safetensors file; a random 1x3x48x48 image in [-1, 1]. The
reference runs in float64: ((x + 1)/2 - mean)/std through features[:i + 2], i the cut convolution's index. gancu's
features (gancu_vgg19_oracle) must agree to 1e-5 relative L2 for the default cut (phi 5,4: features.35) on the
double-accumulating reference backend and the BLAS CPU backend, and for phi 2,2 (features.8). A weights file missing
a tensor must be refused with one line naming the file and the tensor.

  vgg19_against_torchvision.py path/to/gancu_vgg19_oracle WORKDIR
Needs Debian's python3-torchvision (tools/setup_debian.sh installs it): fails, never skips, without it.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torchvision

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CONV_INDEX = {16: 34, 4: 7}  # the k-th convolution's index in features; its ReLU follows


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def rel_l2(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))


def main():
    oracle, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    vgg = torchvision.models.vgg19(weights=None)
    with torch.no_grad():
        for m in vgg.features:
            if isinstance(m, torch.nn.Conv2d):
                m.bias.normal_(0.0, 0.1)
    state = {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}
    weights = os.path.join(work, "vgg19.safetensors")
    save_safetensors(weights, state)
    images = (torch.rand(1, 3, 48, 48) * 2 - 1).to(torch.float32)
    images_path = os.path.join(work, "images.npy")
    np.save(images_path, images.numpy())

    features = vgg.features.double().eval()
    mean = torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1)
    normalised = ((images.double() + 1) / 2 - mean) / std
    failures = 0
    for convolutions, device in ((16, "reference"), (16, "cpu"), (4, "cpu")):
        with torch.no_grad():
            want = features[:CONV_INDEX[convolutions] + 2](normalised).numpy()
        out = os.path.join(work, f"features_{convolutions}_{device}.npy")
        subprocess.run([oracle, weights, images_path, str(convolutions), device, out], check=True)
        got = np.load(out)
        error = rel_l2(got, want) if got.shape == want.shape else float("inf")
        ok = error <= 1e-5
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} cut after convolution {convolutions} ({device}): shape {got.shape} "
              f"vs {want.shape}, relative L2 {error:.3g} (tolerance 1e-5)")

    del state["features.34.bias"]
    broken = os.path.join(work, "missing.safetensors")
    save_safetensors(broken, state)
    run = subprocess.run([oracle, broken, images_path, "16", "cpu", os.path.join(work, "unused.npy")],
                         capture_output=True, text=True)
    message = run.stderr.strip()
    ok = run.returncode == 1 and "\n" not in message and broken in message and "features.34.bias" in message
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} a file missing features.34.bias is refused in one line: {message!r}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
