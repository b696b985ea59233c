#!/usr/bin/env python3
"""The DCGAN training step of gancu, written in PyTorch, timed the same way, for a like-for-like race.

Same architecture (examples/dcgan), init (N(0, 0.02), BN gamma N(1, 0.02)), losses (BCE with logits, non-saturating
G loss), Adam (lr 2e-4, betas (0.5, 0.999)), batch, and the same step structure: D on a real and a fake batch, Adam
on D, then D on the same fake batch and Adam on G. Prints one JSON line per mode with the median step time.

  /usr/bin/python3 bench/pytorch/dcgan_step.py --device cpu --image-size 32 --channels 1 --batch-size 64
  python3 bench/pytorch/dcgan_step.py --device cuda --image-size 64 --channels 3 --batch-size 128 --modes eager,channels_last,cudagraph,compile
"""
import argparse
import json
import sys

MODES = ("eager", "channels_last", "cudagraph", "compile")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="The DCGAN training step in PyTorch: one JSON line per mode.")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--modes", default="eager", help="comma-separated, from " + ",".join(MODES))
    args = ap.parse_args(argv)
    args.modes = args.modes.split(",")
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode(s) {','.join(unknown)}; choose from {','.join(MODES)}")
    return args


if __name__ == "__main__":
    ARGS = parse_args()  # before torch is imported: --help and argument errors need no PyTorch (the GPU check's dry run)

from step_timer import median_step_ms, torch_device  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def generator(nz, ngf, nc, size):
    layers, width = [], ngf * (size // 8)
    layers += [nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
    s = 4
    while s * 2 < size:
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width //= 2
        s *= 2
    layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(ndf, nc, size):
    layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    width, s = ndf, size // 2
    while s > 4:
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, inplace=True)]
        width *= 2
        s //= 2
    layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*layers)


class Wrapper(nn.Module):
    def __init__(self, main):
        super().__init__()
        self.main = main

    def forward(self, x):
        return self.main(x)


def init_weights(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def time_mode(args, mode, dev):
    """Builds both models for `mode`, warms up, times `args.steps` steps; returns the median step in milliseconds."""
    torch.manual_seed(1)
    G = Wrapper(generator(args.nz, args.ngf, args.channels, args.image_size)).to(dev)
    D = Wrapper(discriminator(args.ndf, args.channels, args.image_size)).to(dev)
    G.apply(init_weights)
    D.apply(init_weights)
    if mode == "channels_last":
        G = G.to(memory_format=torch.channels_last)
        D = D.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=(mode == "cudagraph"))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=(mode == "cudagraph"))
    bce = nn.BCEWithLogitsLoss()
    b = args.batch_size
    real = torch.randn(b, args.channels, args.image_size, args.image_size, device=dev).clamp_(-1, 1)
    ones = torch.ones(b, device=dev)
    zeros = torch.zeros(b, device=dev)
    z = torch.randn(b, args.nz, 1, 1, device=dev)

    def step():
        z.normal_()
        fake = G(z)
        opt_d.zero_grad(set_to_none=False)
        loss_d = bce(D(real).view(-1), ones) + bce(D(fake.detach()).view(-1), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=False)
        loss_g = bce(D(fake).view(-1), ones)
        loss_g.backward()
        opt_g.step()
        return loss_d, loss_g

    run = step
    if mode == "compile":
        run = torch.compile(step)
    elif mode == "cudagraph":
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay

    return median_step_ms(run, args.warmup, args.steps, dev.type == "cuda")


def main(args):
    dev = torch_device(args.device, args.threads)
    row = {"framework": "pytorch " + torch.__version__, "device": args.device, "image_size": args.image_size,
           "channels": args.channels, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
           "steps": args.steps}
    failed = 0
    # One line per mode as soon as it is measured (flushed: a caller's time limit keeps the modes done), and a mode
    # that fails (torch.compile without a compiler, say) is reported and the next one still runs.
    for mode in args.modes:
        try:
            ms = time_mode(args, mode, dev)
            print(json.dumps({**row, "mode": mode, "median_step_ms": round(ms, 3),
                              "images_per_s": round(1e3 * args.batch_size / ms, 1)}), flush=True)
        except Exception as e:  # noqa: BLE001  (any failure of one mode is that mode's result)
            failed += 1
            print(json.dumps({**row, "mode": mode, "error": f"{type(e).__name__}: {e}"[:500]}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
