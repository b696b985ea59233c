#!/usr/bin/env python3
"""gancu's conditional DCGAN as PyTorch modules (Mirza and Osindero 2014's conditioning on DCGAN).

The networks are tools/pytorch_dcgan.py's, with the one-hot class joined to their inputs as channels after the
image's or latent's own: G sees cat([z, one_hot(y)]) as [N, nz + K, 1, 1], D sees cat([x, label maps]) as
[N, C + K, S, S] where label map k is 1 everywhere for class k and 0 otherwise. Module names are DCGAN's ("main.N.*"),
so gancu's generator.safetensors / discriminator.safetensors of `gan train --model conditional-dcgan` load with
strict=True.

  python3 tools/pytorch_conditional_dcgan.py RUN/generator.safetensors --z z.npy --labels y.npy --out torch_out.npy
      writes the generator's output (eval mode) for the latent vectors [N, nz] in z.npy and the classes [N] in y.npy
      (int64, or float32 holding whole numbers), for comparison with
      `gan sample --checkpoint RUN/generator.safetensors --z z.npy --labels y.npy --raw gancu_out.npy`.
"""
import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_dcgan import config_of, dcgan_discriminator, dcgan_generator, load_safetensors

MODEL = "conditional-dcgan"


class ConditionalGenerator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=1, image_size=32, classes=10):
        super().__init__()
        self.classes = classes
        self.main = dcgan_generator(nz + classes, ngf, nc, image_size).main

    def forward(self, z, y):
        n = z.shape[0]
        one_hot = F.one_hot(y, self.classes).to(z.dtype).view(n, self.classes, 1, 1)
        return self.main(torch.cat([z.reshape(n, -1, 1, 1), one_hot], 1))


class ConditionalDiscriminator(nn.Module):
    """Returns logits [N, 1, 1, 1]; apply torch.sigmoid for D(x | y)."""

    def __init__(self, ndf=64, nc=1, image_size=32, classes=10, dropout=0.0):
        super().__init__()
        self.classes = classes
        self.main = dcgan_discriminator(ndf, nc + classes, image_size, dropout).main

    def forward(self, x, y):
        n, _, h, w = x.shape
        maps = F.one_hot(y, self.classes).to(x.dtype)[:, :, None, None].expand(n, self.classes, h, w)
        return self.main(torch.cat([x, maps], 1))


def load_generator(path):
    state, meta = load_safetensors(path)
    c = config_of(meta, path, MODEL)
    g = ConditionalGenerator(c["nz"], c["ngf"], c["channels"], c["image_size"], c["classes"])
    g.load_state_dict(state, strict=True)
    return g.eval(), c


def load_discriminator(path):
    state, meta = load_safetensors(path)
    c = config_of(meta, path, MODEL)
    d = ConditionalDiscriminator(c["ndf"], c["channels"], c["image_size"], c["classes"], c.get("d_dropout", 0.0))
    d.load_state_dict(state, strict=True)
    return d.eval(), c


def read_labels(path, count, classes):
    """Class indices [count] from a .npy of int64 (or any integer type) or of float32 holding whole numbers."""
    raw = np.load(path).reshape(-1)
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise ValueError(f"{path}: float labels must be whole numbers")
    elif raw.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels of dtype {raw.dtype} (expected int64 or float32)")
    labels = raw.astype(np.int64)
    if labels.size != count:
        raise ValueError(f"{path}: {labels.size} labels for {count} latent vectors")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{path}: labels must be in 0-{classes - 1}")
    return torch.from_numpy(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator")
    ap.add_argument("--z", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    g, c = load_generator(args.generator)
    z = torch.from_numpy(np.load(args.z).astype(np.float32)).reshape(-1, c["nz"])
    y = read_labels(args.labels, z.shape[0], c["classes"])
    with torch.no_grad():
        images = g(z, y)
    np.save(args.out, images.numpy())


if __name__ == "__main__":
    main()
