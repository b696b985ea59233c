#!/usr/bin/env python3
"""Sample quality of generators against held-out images, the same measures for every sample set.

  bench/sample_quality.py --data TEST_IDX(.gz) name=samples.npy [name=samples.npy ...]

Each sample set ([n, 1, 32, 32] floats in [-1, 1], e.g. from `gan sample --raw` or bench/pytorch/dcgan_train.py) is
compared with the first n images of the held-out set (28x28 zero-padded to 32x32, scaled to [-1, 1]):
  - mmd: squared maximum mean discrepancy with a Gaussian kernel on pixel vectors (bandwidth: the median pairwise
    distance of the held-out images), biased estimator; 0 for identical distributions. The floor printed first is
    the MMD between two disjoint halves of held-out images (what sampling noise alone gives at that size);
  - mean_rms: RMS distance between the mean sample image and the mean held-out image;
  - variance: mean per-pixel variance across samples (held-out images' own value printed with the floor);
  - nn_ratio: median distance from a sample to its nearest held-out image over the median nearest-neighbour distance
    among held-out images (about 1 for realistic samples, larger for off-manifold ones).
Pixel-space measures, not FID: there is no pretrained network here; they rank blank, noisy or collapsed generators
reliably, and comparisons are meaningful only between runs measured together.
"""
import argparse
import gzip
import json

import numpy as np


def load_idx(path, n):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    count, h, w = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    x = np.frombuffer(data, np.uint8, count * h * w, 16).reshape(count, h, w).astype(np.float64) / 127.5 - 1.0
    pad = (32 - h) // 2
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), constant_values=-1.0)
    return x.reshape(count, -1)[:n]


def sq_dists(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0)


def mmd(a, b, bandwidth):
    k = lambda x, y: np.exp(-sq_dists(x, y) / (2 * bandwidth ** 2))
    return float(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())


def nn_median(a, b, exclude_self=False):
    d = sq_dists(a, b)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return float(np.median(np.sqrt(d.min(1))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("sets", nargs="+")
    args = ap.parse_args()
    real = load_idx(args.data, 2 * args.n)
    ref, other = real[:args.n], real[args.n:2 * args.n]
    bandwidth = float(np.median(np.sqrt(sq_dists(ref[:500], ref[:500]))))
    nn_real = nn_median(ref, ref, exclude_self=True)
    rows = [{"set": "held-out (floor)", "n": args.n, "mmd": mmd(other, ref, bandwidth),
             "mean_rms": float(np.sqrt(((other.mean(0) - ref.mean(0)) ** 2).mean())),
             "variance": float(other.var(0).mean()), "nn_ratio": nn_median(other, ref) / nn_real}]
    for spec in args.sets:
        name, path = spec.split("=", 1)
        x = np.load(path).astype(np.float64).reshape(-1, 32 * 32)[:args.n]
        if not np.isfinite(x).all():
            raise SystemExit(f"{path}: non-finite samples")
        rows.append({"set": name, "n": len(x), "mmd": mmd(x, ref[:len(x)], bandwidth),
                     "mean_rms": float(np.sqrt(((x.mean(0) - ref.mean(0)) ** 2).mean())),
                     "variance": float(x.var(0).mean()), "nn_ratio": nn_median(x, ref) / nn_real})
    for r in rows:
        print(json.dumps(r))
    print(f"\n{'set':28} {'n':>6} {'mmd':>9} {'mean_rms':>9} {'variance':>9} {'nn_ratio':>9}")
    for r in rows:
        print(f"{r['set']:28} {r['n']:>6} {r['mmd']:>9.4f} {r['mean_rms']:>9.4f} {r['variance']:>9.4f} {r['nn_ratio']:>9.3f}")


if __name__ == "__main__":
    main()
