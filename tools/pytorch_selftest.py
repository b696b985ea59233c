#!/usr/bin/env python3
"""Checks the PyTorch twins of gancu's networks (tools/pytorch_{dcgan,mlp_gan,conditional_dcgan}.py) on their own,
before any gancu checkpoint of them exists.

For each network: random weights and batch-norm statistics are written as gancu writes a state dict (F32 tensors,
num_batches_tracked included, the config as JSON metadata); the script's command line reads them back strictly and
must reproduce the module's output; a missing or extra tensor must be refused. The architecture is checked
independently of the builders: the MLP networks against a float64 NumPy forward pass, the conditional networks' first
layers against the same layers fed the one-hot classes by hand. With --gan, a PyTorch-made DCGAN generator is sampled by
`gan sample` and compared too (the PyTorch → gancu direction).

  python3 tools/pytorch_selftest.py [--gan build/gan]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import pytorch_conditional_dcgan as cond
import pytorch_dcgan as dcgan
import pytorch_mlp_gan as mlp

TOOLS = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = 1e-5  # relative L2, float32 against float64 or another summation order
failures = []


def save_safetensors(path, state, metadata):
    """A state dict as gancu writes one: every tensor F32 (num_batches_tracked too), in order, no gaps."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, tensor in state.items():
        array = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4")
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        blobs.append(array.tobytes())
        offset += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_network(path, net, network, config):
    save_safetensors(path, net.state_dict(), {"format": "pytorch-state-dict", "network": network,
                                              "config": json.dumps(config)})


def randomize(net, seed):
    """Weights N(0, 1/fan-in), so tanh does not saturate and hide errors, and batch-norm statistics far from their
    initial values, so that eval mode uses them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(0.5 + 1.5 * torch.rand(t.shape, generator=g))
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(0.3 * torch.randn(t.shape, generator=g))
            elif t.dim() == 1:  # batch-norm gamma
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
    return net.eval()


def check(what, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        failures.append(what)
        print(f"FAIL {what}: shape {got.shape}, expected {want.shape}")
        return
    err = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
    ok = err <= TOLERANCE and np.all(np.isfinite(got))
    if not ok:
        failures.append(what)
    print(f"{'ok  ' if ok else 'FAIL'} {what}: relative L2 {err:.2e} (tolerance {TOLERANCE:g}), "
          f"shape {list(got.shape)}")


def expect_refusal(what, load):
    try:
        load()
    except (RuntimeError, ValueError) as e:
        print(f"ok   {what}: refused ({str(e).splitlines()[0][:100]})")
        return
    failures.append(what)
    print(f"FAIL {what}: loaded")


def run_script(script, args):
    subprocess.run([sys.executable, os.path.join(TOOLS, script)] + args, check=True)


def check_strict(name, path, net, load):
    """load(path) refuses the file less one tensor and the file with one more."""
    state = net.state_dict()
    meta = dcgan.load_safetensors(path)[1]
    missing = dict(state)
    missing.pop(next(iter(missing)))
    save_safetensors(path + ".missing", missing, meta)
    expect_refusal(f"{name} without {next(iter(state))}", lambda: load(path + ".missing"))
    extra = dict(state)
    extra["unexpected.weight"] = torch.zeros(2)
    save_safetensors(path + ".extra", extra, meta)
    expect_refusal(f"{name} with an extra tensor", lambda: load(path + ".extra"))


# ---- MLP GAN ----------------------------------------------------------------------------------------------------
def numpy_linear(x, state, prefix):
    return x @ state[prefix + ".weight"].T + state[prefix + ".bias"]


def leaky(x):
    return np.where(x > 0, x, 0.2 * x)


def numpy_mlp_generator(z, state, c):
    s = {k: v.double().numpy() for k, v in state.items()}
    h = z.astype(np.float64)
    for linear, bn in ((0, 2), (3, 5), (6, 8)):  # Linear, LeakyReLU, BatchNorm1d (Keras eps 1e-3), eval mode
        h = leaky(numpy_linear(h, s, f"model.{linear}"))
        b = f"model.{bn}"
        h = (h - s[b + ".running_mean"]) / np.sqrt(s[b + ".running_var"] + 1e-3) * s[b + ".weight"] + s[b + ".bias"]
    h = np.tanh(numpy_linear(h, s, "model.9"))
    return h.reshape(z.shape[0], c["channels"], c["image_size"], c["image_size"])


def numpy_mlp_discriminator(x, state):
    s = {k: v.double().numpy() for k, v in state.items()}
    h = leaky(numpy_linear(x.reshape(x.shape[0], -1).astype(np.float64), s, "model.1"))
    h = leaky(numpy_linear(h, s, "model.3"))
    return numpy_linear(h, s, "model.5")


def check_mlp_gan(tmp):
    c = {"model": "mlp-gan", "nz": 16, "image_size": 28, "channels": 1}
    g = randomize(mlp.MlpGenerator(c["nz"], c["channels"], c["image_size"]), 1)
    d = randomize(mlp.MlpDiscriminator(c["channels"], c["image_size"]), 2)
    write_network(f"{tmp}/mlp_g.safetensors", g, "G", c)
    write_network(f"{tmp}/mlp_d.safetensors", d, "D", c)
    z = np.random.RandomState(0).randn(12, c["nz"]).astype(np.float32)
    np.save(f"{tmp}/z16.npy", z)
    run_script("pytorch_mlp_gan.py", [f"{tmp}/mlp_g.safetensors", "--z", f"{tmp}/z16.npy", "--out", f"{tmp}/mlp.npy"])
    with torch.no_grad():
        want = g(torch.from_numpy(z)).numpy()
        check("mlp-gan G: script on the written file vs the module", np.load(f"{tmp}/mlp.npy"), want)
        check("mlp-gan G: module vs NumPy float64", want, numpy_mlp_generator(z, g.state_dict(), c))
        loaded, _ = mlp.load_discriminator(f"{tmp}/mlp_d.safetensors")
        x = torch.from_numpy(np.random.RandomState(1).uniform(-1, 1, (5, 1, 28, 28)).astype(np.float32))
        check("mlp-gan D: loaded strictly, vs the module", loaded(x).numpy(), d(x).numpy())
        check("mlp-gan D: module vs NumPy float64", d(x).numpy(), numpy_mlp_discriminator(x.numpy(), d.state_dict()))
    check_strict("mlp-gan G", f"{tmp}/mlp_g.safetensors", g, mlp.load_generator)
    check_strict("mlp-gan D", f"{tmp}/mlp_d.safetensors", d, mlp.load_discriminator)
    expect_refusal("mlp-gan file read as a conditional DCGAN", lambda: cond.load_generator(f"{tmp}/mlp_g.safetensors"))


# ---- conditional DCGAN --------------------------------------------------------------------------------------------
def first_layer_output(net, *inputs):
    """The output of net.main[0] during net(*inputs), copied before an in-place LeakyReLU overwrites it."""
    seen = []
    hook = net.main[0].register_forward_hook(lambda module, args, out: seen.append(out.clone()))
    net(*inputs)
    hook.remove()
    return seen[0].numpy()


def check_conditional_dcgan(tmp, c):
    name = f"conditional-dcgan {c['channels']}x{c['image_size']}x{c['image_size']} d_dropout {c['d_dropout']}"
    k, nz, size = c["classes"], c["nz"], c["image_size"]
    g = randomize(cond.ConditionalGenerator(nz, c["ngf"], c["channels"], size, k), 3)
    d = randomize(cond.ConditionalDiscriminator(c["ndf"], c["channels"], size, k, c["d_dropout"]), 4)
    write_network(f"{tmp}/cond_g.safetensors", g, "G", c)
    write_network(f"{tmp}/cond_d.safetensors", d, "D", c)
    rng = np.random.RandomState(2)
    n = 2 * k
    z = rng.randn(n, nz).astype(np.float32)
    y = np.concatenate([np.arange(k), rng.randint(0, k, n - k)]).astype(np.int64)  # every class, then any
    np.save(f"{tmp}/z.npy", z)
    np.save(f"{tmp}/y_int64.npy", y)
    np.save(f"{tmp}/y_float32.npy", y.astype(np.float32))
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    with torch.no_grad():
        want = g(zt, yt).numpy()
        for kind in ("int64", "float32"):
            run_script("pytorch_conditional_dcgan.py", [f"{tmp}/cond_g.safetensors", "--z", f"{tmp}/z.npy", "--labels",
                                                        f"{tmp}/y_{kind}.npy", "--out", f"{tmp}/cond.npy"])
            check(f"{name} G: script ({kind} labels) vs the module", np.load(f"{tmp}/cond.npy"), want)
        # G's first layer sees a 1x1 input, so its output is z's part of the weight plus the class's own row:
        # channel nz + y of the input is the one-hot 1.
        w = g.main[0].weight.double().numpy()  # [nz + K, Cout, 4, 4]
        by_hand = np.einsum("nc,cohw->nohw", z.astype(np.float64), w[:nz]) + w[nz + y]
        check(f"{name} G: first layer vs [z, one_hot(y)] by hand", first_layer_output(g, zt, yt), by_hand)
        if not np.any(np.abs(g(zt, (yt + 1) % k).numpy() - want) > 1e-3):
            failures.append(name)
            print(f"FAIL {name} G: the output does not depend on the class")

        x = torch.from_numpy(rng.uniform(-1, 1, (n, c["channels"], size, size)).astype(np.float32))
        loaded, _ = cond.load_discriminator(f"{tmp}/cond_d.safetensors")
        check(f"{name} D: loaded strictly, vs the module", loaded(x, yt).numpy(), d(x, yt).numpy())
        # D's first convolution is linear in its input: the image's channels, then a plane of ones in channel C + y.
        conv = d.main[0]
        w = conv.weight.double()
        ones = torch.ones(n, 1, size, size, dtype=torch.float64)
        label_part = torch.cat([F.conv2d(ones[i:i + 1], w[:, c["channels"] + int(y[i])][:, None], None, conv.stride,
                                         conv.padding) for i in range(n)])
        by_hand = F.conv2d(x.double(), w[:, :c["channels"]], None, conv.stride, conv.padding) + label_part
        check(f"{name} D: first layer vs [x, label maps] by hand", first_layer_output(d, x, yt), by_hand.numpy())

    check_strict(f"{name} G", f"{tmp}/cond_g.safetensors", g, cond.load_generator)
    check_strict(f"{name} D", f"{tmp}/cond_d.safetensors", d, cond.load_discriminator)
    expect_refusal(f"{name}: labels out of range", lambda: cond.read_labels(f"{tmp}/y_int64.npy", n, k - 1))
    expect_refusal(f"{name}: labels of another count", lambda: cond.read_labels(f"{tmp}/y_int64.npy", n + 1, k))
    np.save(f"{tmp}/y_half.npy", np.full(n, 0.5, np.float32))
    expect_refusal(f"{name}: fractional float labels", lambda: cond.read_labels(f"{tmp}/y_half.npy", n, k))


# ---- DCGAN, PyTorch → gancu ---------------------------------------------------------------------------------------
def check_dcgan_in_gancu(tmp, gan):
    c = {"model": "dcgan", "image_size": 32, "channels": 1, "nz": 16, "ngf": 8, "ndf": 8, "d_dropout": 0.0}
    g = randomize(dcgan.dcgan_generator(c["nz"], c["ngf"], c["channels"], c["image_size"]), 5)
    write_network(f"{tmp}/dcgan_g.safetensors", g, "G", c)
    z = np.random.RandomState(3).randn(8, c["nz"]).astype(np.float32)
    np.save(f"{tmp}/z_dcgan.npy", z)
    subprocess.run([gan, "sample", "--checkpoint", f"{tmp}/dcgan_g.safetensors", "--z", f"{tmp}/z_dcgan.npy", "--raw",
                    f"{tmp}/gancu.npy", "--out", f"{tmp}/grid.png"], check=True, stderr=subprocess.DEVNULL)
    with torch.no_grad():
        want = g(torch.from_numpy(z).reshape(-1, c["nz"], 1, 1)).numpy()
    check("dcgan G written by PyTorch: gan sample vs PyTorch", np.load(f"{tmp}/gancu.npy"), want)
    print(f"     (output mean |x| {np.abs(want).mean():.2f}: tanh is not saturated)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gan", help="the gan binary, to sample a PyTorch-made DCGAN generator with it")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        check_mlp_gan(tmp)
        base = {"model": "conditional-dcgan", "nz": 16, "ngf": 8, "ndf": 8, "classes": 10}
        check_conditional_dcgan(tmp, dict(base, image_size=32, channels=1, d_dropout=0.3))
        check_conditional_dcgan(tmp, dict(base, image_size=16, channels=3, d_dropout=0.0, classes=4))
        if args.gan:
            check_dcgan_in_gancu(tmp, args.gan)
    print(f"{len(failures)} failed" if failures else "all PyTorch twin checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
