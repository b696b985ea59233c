#!/usr/bin/env python3
"""gancu's MLP GAN as PyTorch modules: the Keras GAN() example of eriklindernoren/Keras-GAN (Goodfellow et al. 2014).

gancu's generator.safetensors / discriminator.safetensors of `gan train --model mlp-gan` load into them with
strict=True. Keras' BatchNormalization(momentum=0.8) is PyTorch's momentum 0.2 (PyTorch weights the new batch, Keras
the old average), and Keras' epsilon is 1e-3. D returns one logit: gancu trains with BCE-with-logits.

  python3 tools/pytorch_mlp_gan.py RUN/generator.safetensors --z z.npy --out torch_out.npy
      writes the generator's output [N, C, H, W] (eval mode) for the latent vectors [N, nz] in z.npy, for comparison
      with `gan sample --checkpoint RUN/generator.safetensors --z z.npy --raw gancu_out.npy`.
"""

import torch.nn as nn

from pytorch_dcgan import config_of, generator_cli, load_safetensors

MODEL = "mlp-gan"
WIDTHS = (256, 512, 1024)  # the generator's hidden layers; the discriminator's are 512, 256


class MlpGenerator(nn.Module):
    """z [N, nz] → images [N, C, S, S] in (−1, 1): model.0-8 Linear, LeakyReLU 0.2, BatchNorm1d three times,
    model.9 Linear to C·S·S, model.10 Tanh, model.11 Unflatten to [C, S, S] (no parameters)."""

    def __init__(self, nz=100, channels=1, image_size=28):
        super().__init__()
        layers, width = [], nz
        for out in WIDTHS:
            layers += [nn.Linear(width, out), nn.LeakyReLU(0.2), nn.BatchNorm1d(out, eps=1e-3, momentum=0.2)]
            width = out
        layers += [nn.Linear(width, channels * image_size * image_size), nn.Tanh(),
                   nn.Unflatten(1, (channels, image_size, image_size))]
        self.model = nn.Sequential(*layers)

    def forward(self, z):
        return self.model(z.reshape(z.shape[0], -1))


class MlpDiscriminator(nn.Module):
    """images [N, C, S, S] → logits [N, 1]: model.0 Flatten, model.1-4 Linear 512 and 256 each with LeakyReLU 0.2,
    model.5 Linear to one logit (apply torch.sigmoid for D(x))."""

    def __init__(self, channels=1, image_size=28):
        super().__init__()
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size * image_size, 512), nn.LeakyReLU(0.2),
                                   nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))

    def forward(self, x):
        return self.model(x)


def load_generator(path):
    state, meta = load_safetensors(path)
    c = config_of(meta, path, MODEL)
    g = MlpGenerator(c["nz"], c["channels"], c["image_size"])
    g.load_state_dict(state, strict=True)
    return g.eval(), c


def load_discriminator(path):
    state, meta = load_safetensors(path)
    c = config_of(meta, path, MODEL)
    d = MlpDiscriminator(c["channels"], c["image_size"])
    d.load_state_dict(state, strict=True)
    return d.eval(), c


def main():
    generator_cli(__doc__, load_generator, lambda c: (c["nz"],))


if __name__ == "__main__":
    main()
