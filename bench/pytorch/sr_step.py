#!/usr/bin/env python3
"""gancu's super-resolution training steps, written in PyTorch, timed the same way, for a like-for-like race.

The networks are tools/pytorch_srgan.py's twins of gancu's (models/srgan.h), the step structure the recipe's
(recipes/super_resolution.cpp):
  srresnet: G(LR), pixel MSE against HR, Adam on G.
  srgan:    G(LR) once; D on HR and on G(LR) detached, BCE, Adam on D; then G's loss through the updated D:
            content + 1e-3 x BCE(D(G(LR)), real), the content being the MSE of VGG19 features (torchvision's vgg19,
            cut after the --vgg-convolutions-th convolution's ReLU, ImageNet normalisation, features / 12.75) or, with
            --vgg-convolutions 0, pixel MSE; Adam on G.
Adam lr 1e-4, betas (0.9, 0.999). Prints one JSON line with the median step time.

  /usr/bin/python3 bench/pytorch/sr_step.py --model srresnet --residual-blocks 16 --crop 96 --batch-size 16 --threads 2
"""
import argparse
import json
import os
import sys


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="An SR training step in PyTorch: one JSON line.")
    ap.add_argument("--model", choices=("srresnet", "srgan"), default="srresnet")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--residual-blocks", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96, help="HR crop side")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--no-batch-norm", action="store_true", help="SRResNet without batch norm (gan's --no-batch-norm)")
    ap.add_argument("--vgg-convolutions", type=int, default=16, help="srgan: VGG19 cut (0: pixel MSE content)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    return ap.parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()  # before torch is imported: --help needs no PyTorch

from step_timer import median_step_ms, torch_device  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from pytorch_srgan import Srresnet, SrganDiscriminator  # noqa: E402


def vgg_features(convolutions):
    """torchvision's vgg19().features up to and including the ReLU after the `convolutions`-th convolution."""
    import torchvision
    layers, seen = [], 0
    for m in torchvision.models.vgg19().features:
        layers.append(m)
        if isinstance(m, nn.Conv2d):
            seen += 1
        if isinstance(m, nn.ReLU) and seen == convolutions:
            break
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def time_step(args, dev):
    torch.manual_seed(1)
    G = Srresnet(residual_blocks=args.residual_blocks, upscale=args.scale, batch_norm=not args.no_batch_norm).to(dev)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.9, 0.999))
    b, c = args.batch_size, args.crop
    hr = torch.rand(b, 3, c, c, device=dev) * 2 - 1
    lr = torch.rand(b, 3, c // args.scale, c // args.scale, device=dev) * 2 - 1

    if args.model == "srresnet":
        def step():
            opt_g.zero_grad(set_to_none=False)
            loss = F.mse_loss(G(lr), hr)
            loss.backward()
            opt_g.step()
    else:
        D = SrganDiscriminator(image_size=c).to(dev)
        opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.9, 0.999))
        bce = nn.BCEWithLogitsLoss()
        ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)
        vgg = vgg_features(args.vgg_convolutions).to(dev) if args.vgg_convolutions else None
        mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)

        def features(x):  # images in [-1, 1] → ImageNet-normalised → VGG features / 12.75
            return vgg(((x + 1) / 2 - mean) / std) / 12.75

        def step():
            sr = G(lr)
            opt_d.zero_grad(set_to_none=False)
            loss_d = bce(D(hr), ones) + bce(D(sr.detach()), zeros)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=False)
            content = F.mse_loss(features(sr), features(hr)) if vgg is not None else F.mse_loss(sr, hr)
            loss_g = content + 1e-3 * bce(D(sr), ones)
            loss_g.backward()
            opt_g.step()

    return median_step_ms(step, args.warmup, args.steps, dev.type == "cuda")


def main(args):
    dev = torch_device(args.device, args.threads)
    ms = time_step(args, dev)
    print(json.dumps({"framework": "pytorch " + torch.__version__, "model": args.model, "mode": "eager",
                      "device": args.device, "image_size": args.crop, "residual_blocks": args.residual_blocks,
                      "batch_norm": not args.no_batch_norm,
                      "batch_size": args.batch_size, "threads": torch.get_num_threads(), "steps": args.steps,
                      "median_step_ms": round(ms, 3), "images_per_s": round(1e3 * args.batch_size / ms, 2)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
