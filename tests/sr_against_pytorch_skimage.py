#!/usr/bin/env python3
"""gancu's SR data path and metrics against independent implementations, on real photos (the validation photos of
tools/sr_photos.txt, from Debian's lomiri-wallpapers-16.04):

- LR making: gancu's x4 antialiased bicubic downsampling (kernels/cpu/resize.h through tools/io/photos.h) against
  PyTorch's F.interpolate(mode="bicubic", antialias=True, align_corners=False), on [0, 1] values before rounding:
  relative L2 error at most TOL_LR (1e-5, the brief's bound; in double on both sides it is ~1e-16, and PyTorch in
  float32 is checked too);
- JPEG decoding against PIL's (a window of each photo, exact);
- the 8 crop symmetries against NumPy's flips and rot90 (exact);
- the sampler's batch: HR values bytes mapped to [-1, 1], LR the PyTorch LR of that HR rounded to bytes
  (equal except at rounding ties: at most 1 level, on under 0.1 % of values);
- the bicubic x4 baseline against PyTorch's bicubic upsampling (antialias=True: the same Keys a = -0.5 kernel), rounded
  to bytes, the same tie allowance;
- PSNR and SSIM on Y (MATLAB's rgb2ycbcr, 4 pixels of border cut) against skimage.metrics.peak_signal_noise_ratio and
  structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255): relative
  error at most TOL_METRIC (1e-9; both in double), for the bicubic image and for a mirrored HR (a low score).

    /usr/bin/python3 tests/sr_against_pytorch_skimage.py build/gancu_sr_oracle [MANIFEST]

Debian's python3-torch and python3-skimage are dependencies (tools/setup_debian.sh installs them): without them this
test fails. Without the photo package it skips (exit 77), saying which package is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

TOL_LR = 1e-5
TOL_METRIC = 1e-9
MAX_TIE_FRACTION = 1e-3
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def rel(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def luma(rgb):
    """MATLAB's rgb2ycbcr Y on [0, 255], as float64, not rounded."""
    rgb = rgb.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def skimage_scores(hr, est, border=4):
    a, b = luma(hr)[border:-border, border:-border], luma(est)[border:-border, border:-border]
    return (peak_signal_noise_ratio(a, b, data_range=255),
            structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255))


def torch_resize(planar01, size, dtype=torch.float64):
    x = torch.from_numpy(planar01).to(dtype)[None]
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)[0].double().numpy()


def to_bytes(unit):
    return np.clip(np.round(unit * 255.0), 0, 255).astype(np.int32)


def check_ties(name, got, want, failures):
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    frac = float(np.mean(diff > 0))
    print("  %-28s max byte diff %d, %.5f%% differ" % (name, diff.max(), 100 * frac))
    if diff.max() > 1 or frac > MAX_TIE_FRACTION:
        failures.append(name)


def main():
    oracle = sys.argv[1]
    manifest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tools", "sr_photos.txt")
    photos = []
    for line in open(manifest):
        fields = line.split()
        if fields and fields[0] == "val":
            if not os.path.isfile(fields[1]):
                print("SKIP: %s is missing (install Debian's %s: tools/setup_debian.sh)" % (fields[1], fields[2]))
                return 77
            photos.append(fields[1])
    failures = []
    with tempfile.TemporaryDirectory() as out:
        report = json.loads(subprocess.run([oracle, out] + photos, check=True, capture_output=True, text=True).stdout)

        def raw(name, dtype, shape):
            return np.fromfile(os.path.join(out, name), dtype=dtype).reshape(shape)

        worst_lr64 = worst_lr32 = worst_metric = 0.0
        for i, p in enumerate(report["photos"]):
            wide = raw("p%d-crop-wide.u8" % i, np.uint8, (3, 64, 96))
            # JPEG decoding: PIL's own libjpeg-turbo decode of the same window.
            decoded = np.asarray(Image.open(p["path"]).convert("RGB"))
            if decoded.shape != (p["height"], p["width"], 3) or not np.array_equal(
                    wide, decoded[p["top"]:p["top"] + 64, p["left"]:p["left"] + 96].transpose(2, 0, 1)):
                failures.append("p%d: gancu's decode of %s differs from PIL's" % (i, p["path"]))
            lr = raw("p%d-lr-unit.f64" % i, np.float64, (3, 16, 24))
            worst_lr64 = max(worst_lr64, rel(lr, torch_resize(wide / 255.0, (16, 24))))
            lr32 = torch_resize((wide / 255.0).astype(np.float32), (16, 24), torch.float32)
            worst_lr32 = max(worst_lr32, rel(lr, lr32))
            base = raw("p%d-crop-sym0.u8" % i, np.uint8, (3, 64, 64))
            if not np.array_equal(base, wide[:, :, :64]):
                failures.append("p%d: the 64x64 crop is not the wide crop's left part" % i)
            for s in range(8):
                want = np.rot90(base[:, :, ::-1] if s & 1 else base, s >> 1, axes=(1, 2))
                if not np.array_equal(raw("p%d-crop-sym%d.u8" % (i, s), np.uint8, (3, 64, 64)), want):
                    failures.append("p%d: symmetry %d is not mirror %d then %d quarter turns" % (i, s, s & 1, s >> 1))
            hr = raw("p%d-hr.u8" % i, np.uint8, (256, 256, 3))
            lr_bytes = raw("p%d-lr.u8" % i, np.uint8, (64, 64, 3))
            bicubic = raw("p%d-bicubic.u8" % i, np.uint8, (256, 256, 3))
            mirror = raw("p%d-mirror.u8" % i, np.uint8, (256, 256, 3))
            check_ties("p%d LR of the 256 crop" % i, lr_bytes.transpose(2, 0, 1),
                       to_bytes(torch_resize(hr.transpose(2, 0, 1) / 255.0, (64, 64))), failures)
            check_ties("p%d bicubic x4" % i, bicubic.transpose(2, 0, 1),
                       to_bytes(torch_resize(lr_bytes.transpose(2, 0, 1) / 255.0, (256, 256))), failures)
            for name, est in (("bicubic", bicubic), ("mirror", mirror)):
                psnr, ssim = skimage_scores(hr, est)
                got = p[name]
                err = max(abs(got["psnr"] - psnr) / abs(psnr), abs(got["ssim"] - ssim) / abs(ssim))
                worst_metric = max(worst_metric, err)
                print("  p%d %-8s PSNR %.4f (skimage %.4f)  SSIM %.5f (skimage %.5f)" % (
                    i, name, got["psnr"], psnr, got["ssim"], ssim))
                if err > TOL_METRIC:
                    failures.append("p%d %s: relative error %.3g > %g" % (i, name, err, TOL_METRIC))
        batch_hr = raw("batch-hr.f32", np.float32, (4, 3, 96, 96))
        batch_lr = raw("batch-lr.f32", np.float32, (4, 3, 24, 24))
        hr_bytes = (batch_hr.astype(np.float64) + 1) * 127.5
        if np.abs(hr_bytes - np.round(hr_bytes)).max() > 1e-4 or batch_lr.min() < -1 or batch_lr.max() > 1:
            failures.append("sampler: HR values are not bytes mapped to [-1, 1], or LR leaves [-1, 1]")
        for b in range(4):
            check_ties("sampler LR %d" % b, np.round((batch_lr[b].astype(np.float64) + 1) * 127.5),
                       to_bytes(torch_resize(np.round(hr_bytes[b]) / 255.0, (24, 24))), failures)
        print("LR x4 vs PyTorch: relative L2 %.3g (float64), %.3g (PyTorch float32); tolerance %g" % (
            worst_lr64, worst_lr32, TOL_LR))
        print("PSNR/SSIM vs skimage: worst relative error %.3g; tolerance %g" % (worst_metric, TOL_METRIC))
        if worst_lr64 > TOL_LR or worst_lr32 > TOL_LR:
            failures.append("LR: relative error over %g" % TOL_LR)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
