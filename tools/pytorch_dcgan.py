#!/usr/bin/env python3
"""gancu's DCGAN as PyTorch modules, and a loader for gancu's safetensors files that needs only torch.

The modules are PyTorch's examples/dcgan networks (the discriminator without its final Sigmoid: gancu trains with
BCE-with-logits). gancu's generator.safetensors / discriminator.safetensors load into them with strict=True.

  python3 tools/pytorch_dcgan.py RUN/generator.safetensors --z z.npy --out torch_out.npy
      writes the generator's output (eval mode) for the latent vectors in z.npy, for comparison with
      `gan sample --checkpoint RUN/generator.safetensors --z z.npy --raw gancu_out.npy`.
"""
import argparse
import json
import struct

import numpy as np
import torch
import torch.nn as nn


def dcgan_generator(nz=100, ngf=64, nc=1, image_size=32):
    layers, width, size = [], ngf * (image_size // 8), 4
    layers += [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
    while size * 2 < image_size:
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width, size = width // 2, size * 2
    layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
    net = nn.Module()
    net.main = nn.Sequential(*layers)
    net.forward = lambda x: net.main(x)
    return net


def dcgan_discriminator(ndf=64, nc=1, image_size=32, dropout=0.0):
    def block(layers):
        return layers + ([nn.Dropout(dropout)] if dropout > 0 else [])
    layers = block([nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)])
    width, size = ndf, image_size // 2
    while size > 4:
        layers += block([nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                         nn.LeakyReLU(0.2, inplace=True)])
        width, size = width * 2, size // 2
    layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]  # logits; apply torch.sigmoid for D(x)
    net = nn.Module()
    net.main = nn.Sequential(*layers)
    net.forward = lambda x: net.main(x)
    return net


def load_safetensors(path):
    """Returns (state_dict, metadata) from a safetensors file of F32 tensors, using only the standard format."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    meta = header.pop("__metadata__", {})
    base = 8 + header_len
    state = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype="<f4").reshape(info["shape"])
        state[name] = torch.from_numpy(array.copy())
    return state, meta


def load_generator(path):
    state, meta = load_safetensors(path)
    c = config_of(meta, path)
    g = dcgan_generator(c["nz"], c["ngf"], c["channels"], c["image_size"])
    g.load_state_dict(state, strict=True)
    return g.eval(), c


def config_of(meta, path, model="dcgan"):
    """The network configuration stored in a gancu file's "config" metadata, refusing another model's."""
    c = json.loads(meta["config"])
    if c.get("model", model) != model:
        raise ValueError(f"{path}: holds a {c['model']} network, not {model}")
    return c


def generator_cli(doc, load, latent_dims):
    """The command line of a twin without labels: GEN.safetensors --z z.npy --out out.npy, z reshaped to
    [-1, *latent_dims(config)]."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generator")
    ap.add_argument("--z", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    g, c = load(args.generator)
    z = torch.from_numpy(np.load(args.z).astype(np.float32)).reshape(-1, *latent_dims(c))
    with torch.no_grad():
        y = g(z)
    np.save(args.out, y.numpy())


def main():
    generator_cli(__doc__, load_generator, lambda c: (c["nz"], 1, 1))


if __name__ == "__main__":
    main()
