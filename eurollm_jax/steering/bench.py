"""``python -m launch.bench rfm [--n 2048 --d 1024 --iters 5 --repeats 3]``

Times ``fit_rfm`` (JAX, blocked, float32) against a vectorised NumPy implementation of the
same iteration (``rfm_numpy``: float64 by default, the reference precision; ``--numpy_dtype
float32`` for a same-precision peer) on planted synthetic data, in one process. Prints
the median seconds of each, the ratio (NumPy / JAX), and how far the two agree (relative
Frobenius error of M, direction cosine). The JAX time excludes compilation (one warm-up
fit first). n = 4,096, d = 4,096 fits too (``--n 4096 --d 4096``), but is not the default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from eurollm_jax.steering.rfm import SKIP_DISTANCE, fit_rfm


def rfm_numpy(X, y, *, bandwidth=10.0, reg=1e-3, iters=5, center_grads=False, dtype=np.float64):
    """The RFM iteration in NumPy, vectorised (whole n x n matrices): (M, alpha, direction)."""
    X = np.asarray(X, dtype)
    y = np.asarray(y, dtype)
    n, d = X.shape
    M = np.eye(d, dtype=dtype)
    alpha = None
    for _ in range(iters):
        XM = X @ M
        sq = np.sum(XM * X, 1)[:, None] + np.sum(XM * X, 1)[None, :] - 2 * XM @ X.T
        dist = np.sqrt(np.maximum(sq, 0))
        np.fill_diagonal(dist, 0.0)
        K = np.exp(-dist / bandwidth)
        alpha = np.linalg.solve(K + reg * np.eye(n, dtype=dtype), y)
        keep = dist >= SKIP_DISTANCE
        np.fill_diagonal(keep, False)
        W = np.where(keep, alpha[None, :] * K / np.where(keep, dist, 1.0), 0.0)
        G = (W @ X - W.sum(1, keepdims=True) * X) @ M / bandwidth
        if center_grads:
            G = G - G.mean(0)
        M = G.T @ G / n
    evals, evecs = np.linalg.eigh(M.astype(np.float64))
    v = evecs[:, -1]
    if np.sum((X @ v - (X @ v).mean()) * (y - y.mean())) < 0:
        v = -v
    return M, alpha, v


def planted_data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X @ u > 0).astype(np.float32)
    return X, y, u


def _median_time(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=(argv or ["launch.bench rfm"])[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--bandwidth", type=float, default=None,
                        help="default: sqrt(d) (the scale of distances between the points)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numpy_dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--skip_numpy", action="store_true", help="time JAX only (big sizes)")
    args = parser.parse_args((argv or [""])[1:])
    X, y, u = planted_data(args.n, args.d)
    bw = args.bandwidth or float(np.sqrt(args.d))

    def jax_fit():
        r = fit_rfm(X, y, bandwidth=bw, iters=args.iters)
        return r  # fit_rfm returns host arrays: the work is finished when it returns

    jax_fit()  # compile
    t_jax, r = _median_time(jax_fit, args.repeats)
    result = {"n": args.n, "d": args.d, "iters": args.iters, "bandwidth": bw,
              "jax_median_s": round(t_jax, 4), "jax_direction_cos_planted": float(abs(r.direction @ u))}
    if not args.skip_numpy:
        dtype = np.float64 if args.numpy_dtype == "float64" else np.float32
        t_np, (M, _, v) = _median_time(
            lambda: rfm_numpy(X, y, bandwidth=bw, iters=args.iters, dtype=dtype), args.repeats)
        result.update({
            "numpy_dtype": args.numpy_dtype, "numpy_median_s": round(t_np, 4),
            "ratio_numpy_over_jax": round(t_np / t_jax, 2),
            "rel_frobenius_M": float(np.linalg.norm(r.M - M) / np.linalg.norm(M)),
            "direction_cosine": float(r.direction @ v),
        })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
