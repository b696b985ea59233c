#!/usr/bin/env python3
"""PyTorch's DCGAN recipe (examples/dcgan) trained on an IDX image file, for comparing sample quality with gancu.

The same recipe as `gan train`: DCGAN at 32x32 (28x28 images zero-padded, as gancu does), N(0, 0.02) conv init and
N(1, 0.02) batch-norm gamma, BCE with logits, non-saturating generator loss, Adam(2e-4, betas (0.5, 0.999)), batch
64, D then G each step on the same fake batch. Writes --n samples of the generator in eval mode to --out (.npy,
[n, 1, 32, 32] in [-1, 1]).

  /usr/bin/python3 bench/pytorch/dcgan_train.py --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
      --steps 500 --out torch_samples.npy
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from pytorch_dcgan import dcgan_discriminator, dcgan_generator  # noqa: E402
from dcgan_step import init_weights  # noqa: E402  (this folder: the timed step's initialisation, the same recipe)


def load_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if int.from_bytes(data[0:4], "big") != 0x803:
        raise SystemExit(f"{path}: not an IDX3 image file")
    n, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, np.uint8, n * h * w, 16).reshape(n, 1, h, w)


def to_model_images(images, size):
    """uint8 [n, 1, h, w] -> float [-1, 1] [n, 1, size, size]; 28x28 is zero-padded to 32x32 as gancu does."""
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
    pad = (size - x.shape[-1]) // 2
    if pad > 0:
        x = nn.functional.pad(x, (pad, pad, pad, pad), value=-1.0)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = to_model_images(load_idx_images(args.data), 32)
    G, D = dcgan_generator(args.nz, args.width, 1, 32), dcgan_discriminator(args.width, 1, 32)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    b = args.batch_size
    ones, zeros = torch.ones(b), torch.zeros(b)
    order, position = torch.randperm(len(data)), 0
    start = time.time()
    for step in range(1, args.steps + 1):
        if position + b > len(data):
            order, position = torch.randperm(len(data)), 0
        real = data[order[position:position + b]]
        position += b
        fake = G(torch.randn(b, args.nz, 1, 1))
        opt_d.zero_grad()
        loss_d = bce(D(real).view(-1), ones) + bce(D(fake.detach()).view(-1), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(D(fake).view(-1), ones)
        loss_g.backward()
        opt_g.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: loss_D {loss_d.item():.3f} loss_G {loss_g.item():.3f} ({time.time() - start:.0f} s)",
                  file=sys.stderr)
    G.eval()
    with torch.no_grad():
        samples = torch.cat([G(torch.randn(min(500, args.n - i), args.nz, 1, 1)) for i in range(0, args.n, 500)])
    np.save(args.out, samples.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
