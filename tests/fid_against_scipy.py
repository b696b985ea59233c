#!/usr/bin/env python3
"""gancu's FID and KID against an independent implementation: SciPy's matrix square root and pytorch-fid's formula,
NumPy's covariance, and KID's unbiased polynomial-kernel MMD² written here in NumPy (as torch-fidelity computes it).

    /usr/bin/python3 tests/fid_against_scipy.py build/gancu_fid_oracle

For each case, random features (float32 .npy, read as doubles on both sides) go to gancu_fid_oracle, which prints
gancu's stats, Σa·Σb, its square root, the FID and the KID of the whole sets as JSON. Debian's python3-scipy is a
dependency (tools/setup_debian.sh installs it): without it this test fails rather than skips.
"""
import json
import subprocess
import sys
import tempfile

import numpy as np
import scipy.linalg

TOL_FID = 1e-6      # the bound; double throughout, so agreement is usually far closer
TOL_STATS = 1e-12
TOL_SQRT = 1e-6
TOL_KID = 1e-9


def pytorch_fid(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance (src/pytorch_fid/fid_score.py), restated."""
    diff = mu1 - mu2
    with np.errstate(all="ignore"):  # the singular case divides 0 by 0 before the offset is added
        covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("imaginary component %s" % np.max(np.abs(covmean.imag)))
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def polynomial_mmd2_unbiased(x, y):
    """torch-fidelity's kid: the cubic polynomial kernel (x·y/d + 1)³, unbiased MMD² of one subset pair."""
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    m = x.shape[0]
    return float((k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def rel(got, want):
    got, want = np.asarray(got), np.asarray(want)
    scale = np.linalg.norm(want)
    return float(np.linalg.norm(got - want) / scale) if scale > 0 else float(np.linalg.norm(got))


def mixing(rng, d, rank=None):
    """A random map from a latent of `rank` dimensions (d by default) to d correlated features."""
    return rng.standard_normal((rank or d, d)) / np.sqrt(rank or d)


def features(rng, n, mix, shift=0.0, scale=1.0):
    """n correlated Gaussian features: a standard normal latent mixed by `mix`, scaled and shifted."""
    return (scale * (rng.standard_normal((n, mix.shape[0])) @ mix) + shift).astype(np.float32)


def disjoint(rng, n, d, first_half):
    """Features living in one half of the dimensions, exact zeros in the other: two such sets on opposite halves have
    Σa·Σb = 0 exactly, whose square root's recurrence meets 0/0 (SciPy: 0, so no ε·I offset; Eigen's own sqrt: NaN)."""
    x = np.zeros((n, d), np.float32)
    half = slice(0, d // 2) if first_half else slice(d // 2, d)
    x[:, half] = rng.standard_normal((n, d // 2))
    return x


def main():
    oracle = sys.argv[1]
    rng = np.random.default_rng(20261130)
    m64, m128, m128b, low_rank = mixing(rng, 64), mixing(rng, 128), mixing(rng, 128), mixing(rng, 64, rank=40)
    cases = [
        # name, a, b
        ("d64 n500 shifted", features(rng, 500, m64), features(rng, 500, m64, shift=0.3, scale=1.2)),
        ("d128 n2000 vs n1500", features(rng, 2000, m128), features(rng, 1500, m128b, shift=-0.1, scale=0.9)),
        ("d128 n1000 same distribution", features(rng, 1000, m128), features(rng, 1000, m128)),
        # Rank 40 of 64: both covariances are singular but for float32 rounding, so Σa·Σb has eigenvalues at the
        # rounding level, some slightly negative or complex, which the complex square root must handle as SciPy does.
        ("d64 n800 rank 40 (near-singular)", features(rng, 800, low_rank), features(rng, 800, low_rank, shift=0.2)),
        ("d64 n600 disjoint supports (singular: Σa·Σb = 0 exactly)", disjoint(rng, 600, 64, True),
         disjoint(rng, 600, 64, False)),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, a, b in cases:
            np.save(tmp + "/a.npy", a)
            np.save(tmp + "/b.npy", b)
            out = json.loads(subprocess.run([oracle, tmp + "/a.npy", tmp + "/b.npy"], check=True, capture_output=True,
                                            text=True).stdout)
            d = a.shape[1]
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            mu_a, mu_b = a64.mean(axis=0), b64.mean(axis=0)
            cov_a, cov_b = np.cov(a64, rowvar=False), np.cov(b64, rowvar=False)
            product = np.array(out["product"]).reshape(d, d)
            # JSON has no NaN: gancu's nlohmann::json writes null, read back as NaN.
            as_array = lambda values: np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            root = (as_array(out["sqrt_re"]) + 1j * as_array(out["sqrt_im"])).reshape(d, d)
            with np.errstate(all="ignore"):
                root_scipy = scipy.linalg.sqrtm(product, disp=False)[0]
            finite = np.isfinite(root_scipy).all()
            checks = [
                ("mean", rel(out["mean_a"], mu_a) + rel(out["mean_b"], mu_b), TOL_STATS),
                ("cov", rel(np.reshape(out["cov_a"], (d, d)), cov_a) + rel(np.reshape(out["cov_b"], (d, d)), cov_b),
                 TOL_STATS),
                # Where SciPy's square root is not finite (the singular case), gancu's must not be either: both then
                # take pytorch-fid's offset, and only the FID is compared.
                ("sqrtm", rel(root, root_scipy) if finite else 0.0 if not np.isfinite(root).all() else np.inf, TOL_SQRT),
                # The square root, squared, gives the product back (SciPy's own check, its `errest`).
                ("sqrtm^2", rel(root @ root, product) if finite else 0.0, TOL_SQRT),
                ("fid", rel(out["fid"], pytorch_fid(mu_a, cov_a, mu_b, cov_b)), TOL_FID),
            ]
            if "kid_mean" in out:
                checks.append(("kid", rel(out["kid_mean"], polynomial_mmd2_unbiased(a64, b64)), TOL_KID))
                checks.append(("kid stddev of one subset", abs(out["kid_stddev"]), 0.0))
            for what, err, tol in checks:
                ok = err <= tol
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name}: {what} relative error {err:.2e} (tolerance {tol:.0e})")
            print(f"     {name}: gancu FID {out['fid']:.10g}" + (f", KID {out['kid_mean']:.6g}" if "kid_mean" in out else ""))
    print("all agree" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
