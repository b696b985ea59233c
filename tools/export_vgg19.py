#!/usr/bin/env python3
"""Writes torchvision's VGG19 weights as the safetensors file that `gan train --model srgan --vgg19 FILE` reads
(torchvision's state dict names, features.N.weight|bias; the classifier layers are left out: gancu never reads them).

  python3 tools/export_vgg19.py vgg19.safetensors                       # ImageNet weights (torchvision downloads them)
  python3 tools/export_vgg19.py vgg19.safetensors --pth vgg19-dcbb9e9d.pth   # from torchvision's file, offline
  python3 tools/export_vgg19.py vgg19-random.safetensors --random           # random weights: timing only

gancu itself downloads nothing: this is the one step that may need the network.
"""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_selftest import save_safetensors  # noqa: E402  (the writer gancu's tests use)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--pth", help="torchvision's vgg19 weights file (default: download the ImageNet weights)")
    parser.add_argument("--random", action="store_true",
                        help="torchvision's random initialisation (seed 0): for benchmarks, not for training")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.vgg19()
    if args.random:
        pass
    elif args.pth:
        model.load_state_dict(torch.load(args.pth, map_location="cpu"), strict=True)
    else:
        model = torchvision.models.vgg19(weights="IMAGENET1K_V1")
    state = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    source = "random (seed 0)" if args.random else "(" + os.path.basename(args.pth) + ")" if args.pth else "IMAGENET1K_V1"
    save_safetensors(args.out, state, {"source": "torchvision vgg19 " + source})
    print(f"wrote {args.out}: {len(state)} tensors")


if __name__ == "__main__":
    main()
