#!/usr/bin/env python3
"""gancu's SRGAN networks (models/srgan.h) as PyTorch modules, named so that gancu's weights load with strict=True,
and the oracle of the tests that compare gancu's forward and backward passes with PyTorch's.

  Srresnet: head = (conv 9x9, PReLU); residual.i = (conv3x3, BN, PReLU, conv3x3, BN) + identity; trunk = (conv3x3,
            BN) + head's output; upsample.j = (conv3x3 to 4x channels, PixelShuffle(2), PReLU); tail = conv 9x9; tanh.
  SrganDiscriminator: features = (conv3x3, LeakyReLU 0.2, then 7x (conv3x3, BN, LeakyReLU 0.2)); flatten;
            classifier = (Linear, LeakyReLU 0.2, Linear to one logit).

  python3 tools/pytorch_srgan.py --check DIR
      DIR holds what a gancu test wrote (manifest.json and .npy files, see check()): the twin loads gancu's initial
      state strictly, repeats gancu's training-mode forward, loss and backward and the eval-mode forward in float64,
      and compares everything to 1e-5 relative L2; exits 1 on a mismatch.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Residual(nn.Sequential):
    """x + body(x), body being this Sequential's modules."""

    def forward(self, x):
        return x + super().forward(x)


class Srresnet(nn.Module):
    def __init__(self, residual_blocks=16, channels=64, upscale=4, image_channels=3, batch_norm=True):
        super().__init__()
        if upscale not in (2, 4):
            raise ValueError(f"upscale must be 2 or 4, got {upscale}")
        c = channels
        # No bias before a batch norm (its mean subtraction cancels one), PyTorch's default bias elsewhere. Without
        # batch norm (gancu's --no-batch-norm) the Sequentials lose their BN entries.
        bn = [nn.BatchNorm2d] if batch_norm else []

        def conv_bn(*prelu):
            return [nn.Conv2d(c, c, 3, 1, 1, bias=not batch_norm)] + [m(c) for m in bn] + [m(c) for m in prelu]

        self.head = nn.Sequential(nn.Conv2d(image_channels, c, 9, 1, 4), nn.PReLU(c))
        self.residual = nn.Sequential(*[Residual(*conv_bn(nn.PReLU), *conv_bn()) for _ in range(residual_blocks)])
        self.trunk = nn.Sequential(*conv_bn())
        self.upsample = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(c, 4 * c, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(c))
            for _ in range(upscale // 2)])
        self.tail = nn.Conv2d(c, image_channels, 9, 1, 4)

    def forward(self, lr):
        head = self.head(lr)
        return torch.tanh(self.tail(self.upsample(self.trunk(self.residual(head)) + head)))


class SrganDiscriminator(nn.Module):
    def __init__(self, image_size=96, image_channels=3, width=64, dense_features=1024):
        super().__init__()
        if image_size < 16 or image_size % 16:
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        layers, channels = [nn.Conv2d(image_channels, width, 3, 1, 1), nn.LeakyReLU(0.2)], width
        for k in range(1, 8):  # 64-128-128-256-256-512-512 for width 64, stride 2 on odd k
            out = width << (k // 2)
            layers += [nn.Conv2d(channels, out, 3, 2 if k % 2 else 1, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2)]
            channels = out
        self.features = nn.Sequential(*layers)
        flat = channels * (image_size // 16) ** 2
        self.classifier = nn.Sequential(nn.Linear(flat, dense_features), nn.LeakyReLU(0.2), nn.Linear(dense_features, 1))

    def forward(self, hr):
        return self.classifier(torch.flatten(self.features(hr), 1))


def build(net, config):
    if net == "srresnet":
        return Srresnet(config["residual_blocks"], config["channels"], config["upscale"], config["image_channels"],
                        config.get("batch_norm", True))
    if net == "discriminator":
        return SrganDiscriminator(config["image_size"], config["image_channels"], config["width"],
                                  config["dense_features"])
    raise ValueError(f"unknown network {net}")


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def load_npy_dir(folder):
    """{name: float64 tensor} of every NAME.npy in folder ({} when there is no folder: a network without buffers)."""
    if not os.path.isdir(folder):
        return {}
    return {f[:-4]: torch.from_numpy(np.load(os.path.join(folder, f)).astype(np.float64))
            for f in sorted(os.listdir(folder)) if f.endswith(".npy")}


def rel_l2(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def check(folder):
    """manifest.json: {net, config, tolerance, default_parameter_count}; state/NAME.npy: gancu's parameters and
    buffers before the step; input.npy, target.npy; gancu's results: train_output.npy, loss.npy, grad/NAME.npy (every
    parameter), grad_input.npy, running/NAME.npy (buffers after the step), eval_output.npy (eval mode, after it)."""
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    tol = manifest["tolerance"]
    net = build(manifest["net"], manifest["config"]).double()
    state = load_npy_dir(os.path.join(folder, "state"))
    for name in net.state_dict():  # gancu does not store the count; the step below is the first training forward
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0, dtype=torch.long)
    net.load_state_dict(state, strict=True)
    results = []

    def compare(what, got, want):
        results.append((what, rel_l2(got, want)))

    x = torch.from_numpy(np.load(os.path.join(folder, "input.npy")).astype(np.float64)).requires_grad_(True)
    target = torch.from_numpy(np.load(os.path.join(folder, "target.npy")).astype(np.float64))
    net.train()
    y = net(x)
    loss = F.mse_loss(y, target) if manifest["net"] == "srresnet" else F.binary_cross_entropy_with_logits(y, target)
    loss.backward()
    compare("train output", np.load(os.path.join(folder, "train_output.npy")), y.detach().numpy())
    compare("loss", np.load(os.path.join(folder, "loss.npy")).reshape(()), loss.detach().numpy())
    compare("grad input", np.load(os.path.join(folder, "grad_input.npy")), x.grad.numpy())
    grads = load_npy_dir(os.path.join(folder, "grad"))
    params = dict(net.named_parameters())
    if set(grads) != set(params):
        print(f"FAIL gradients: gancu has {sorted(set(grads) ^ set(params))} that PyTorch does not, or the reverse")
        return 1
    for name, p in params.items():
        compare("grad " + name, grads[name].numpy(), p.grad.numpy())
    for name, t in load_npy_dir(os.path.join(folder, "running")).items():
        compare(name, t.numpy(), net.state_dict()[name].numpy())
    net.eval()
    with torch.no_grad():
        compare("eval output", np.load(os.path.join(folder, "eval_output.npy")), net(x).numpy())

    default_net = build(manifest["net"], manifest["default_config"])
    count = parameter_count(default_net)
    failed = [what for what, err in results if not err <= tol]
    for what, err in results:
        print(f"{'FAIL' if what in failed else 'ok  '} {what}: relative L2 {err:.2e} (tolerance {tol:.0e})")
    print(f"{'ok  ' if count == manifest['default_parameter_count'] else 'FAIL'} default {manifest['net']} "
          f"parameters: PyTorch {count}, gancu {manifest['default_parameter_count']}")
    return 1 if failed or count != manifest["default_parameter_count"] else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", required=True, metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.exit(check(args.check))


if __name__ == "__main__":
    main()
