"""fit_rfm against a float64 NumPy reference written here, and on a planted feature."""

import numpy as np
import pytest

from eurollm_jax.steering import fit_rfm
from eurollm_jax.steering.rfm import roc_auc, select_rfm


def rfm_reference(X, y, *, bandwidth, reg, iters, center_grads=False):
    """The RFM iteration, literally, in float64 (loops over training points)."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, d = X.shape
    M = np.eye(d)
    for _ in range(iters):
        diff = X[:, None, :] - X[None, :, :]  # [n, n, d]  x_i - x_j
        dist = np.sqrt(np.maximum(np.einsum("ijd,de,ije->ij", diff, M, diff), 0.0))
        K = np.exp(-dist / bandwidth)
        alpha = np.linalg.solve(K + reg * np.eye(n), y)
        grads = np.zeros((n, d))
        for i in range(n):
            g = np.zeros(d)
            for j in range(n):
                if dist[i, j] < 1e-10:
                    continue
                g += alpha[j] * K[i, j] / dist[i, j] * (M @ (X[j] - X[i]))
            grads[i] = g / bandwidth
        if center_grads:
            grads = grads - grads.mean(0)
        M = grads.T @ grads / n
    evals, evecs = np.linalg.eigh(M)
    v = evecs[:, -1]
    if np.corrcoef(X @ v, y)[0, 1] < 0:
        v = -v
    return M, alpha, v


def _planted(n, d, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    X = rng.normal(size=(n, d))
    y = (X @ u + noise * rng.normal(size=n) > 0).astype(np.float64)
    return X, y, u


@pytest.mark.parametrize("center", [False, True])
def test_matches_numpy_reference(center):
    X, y, _ = _planted(120, 12, seed=0)
    X = X * 2.0
    ref_M, ref_alpha, ref_v = rfm_reference(X, y, bandwidth=10.0, reg=1e-3, iters=3,
                                            center_grads=center)
    got = fit_rfm(X, y, bandwidth=10.0, reg=1e-3, iters=3, center_grads=center,
                  block_size=32)  # several row blocks, the last one padded
    rel = np.linalg.norm(got.M - ref_M) / np.linalg.norm(ref_M)
    assert rel <= 1e-2, rel
    assert float(got.direction @ ref_v) >= 0.99
    assert got.M.shape == (12, 12) and got.alpha.shape == (120,)
    assert np.linalg.norm(got.direction) == pytest.approx(1.0, abs=1e-5)
    # the predictor uses the last kernel: f(x_i) ~ y_i on training points (small ridge)
    pred = got.predict(X)
    assert np.corrcoef(pred, y)[0, 1] > 0.9


def test_recovers_planted_direction():
    X, y, u = _planted(600, 24, seed=1)
    got = fit_rfm(X, y, bandwidth=10.0, reg=1e-3, iters=5)
    assert float(got.direction @ u) >= 0.95  # signed: <x, direction> correlates with y
    assert np.corrcoef(X @ got.direction, y)[0, 1] > 0


def test_duplicate_points_are_skipped_not_nan():
    X, y, _ = _planted(40, 6, seed=2)
    X = np.concatenate([X, X[:5]])  # exact duplicates: distance 0 terms are skipped
    y = np.concatenate([y, y[:5]])
    got = fit_rfm(X, y, iters=2)
    assert np.isfinite(got.M).all() and np.isfinite(got.direction).all()


def test_select_by_validation_auc():
    X, y, u = _planted(300, 10, seed=3, noise=0.3)
    model, scores = select_rfm(X[:200], y[:200], X[200:], y[200:], bandwidths=(1.0, 10.0),
                               iters=3)
    assert [s["bandwidth"] for s in scores] == [1.0, 10.0]
    assert model.bandwidth == max(scores, key=lambda s: s["val_auc"])["bandwidth"]
    assert max(s["val_auc"] for s in scores) > 0.8


def test_roc_auc_matches_pair_counting():
    rng = np.random.default_rng(4)
    s = rng.integers(0, 5, size=50).astype(float)  # many ties
    lab = rng.integers(0, 2, size=50)
    pos, neg = s[lab == 1], s[lab == 0]
    want = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert roc_auc(s, lab) == pytest.approx(want)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="rows"):
        fit_rfm(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="matrix"):
        fit_rfm(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="bandwidth"):
        fit_rfm(np.ones((4, 2)), np.zeros(4), bandwidth=0)


def test_bench_numpy_peer_matches_and_main_runs(capsys):
    import json

    from eurollm_jax.steering.bench import main, rfm_numpy

    X, y, _ = _planted(80, 8, seed=5)
    M_ref, _, v_ref = rfm_reference(X, y, bandwidth=5.0, reg=1e-3, iters=2)
    M_np, _, v_np = rfm_numpy(X, y, bandwidth=5.0, iters=2)
    np.testing.assert_allclose(M_np, M_ref, rtol=1e-8, atol=1e-12)
    assert main(["launch.bench rfm", "--n", "64", "--d", "8", "--repeats", "1", "--iters", "2"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rel_frobenius_M"] <= 1e-2 and out["direction_cosine"] >= 0.99
    assert out["ratio_numpy_over_jax"] > 0
