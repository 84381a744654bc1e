"""MI estimators against the Gaussian closed form; layer pairing and the plot."""

import math
import os

import numpy as np
import pytest

from eurollm_jax.steering import mi


def correlated_gaussian(n, rhos, extra_dims=0, seed=0):
    """X, Y with coordinate pairs of correlation rho_i, rotated into extra noise dims."""
    rng = np.random.default_rng(seed)
    k = len(rhos)
    a = rng.normal(size=(n, k))
    b = rng.normal(size=(n, k))
    rhos = np.asarray(rhos)
    X = a
    Y = rhos * a + np.sqrt(1 - rhos**2) * b
    if extra_dims:  # low-variance independent noise, then a random rotation
        X = np.concatenate([X, 0.05 * rng.normal(size=(n, extra_dims))], 1)
        Y = np.concatenate([Y, 0.05 * rng.normal(size=(n, extra_dims))], 1)
        qx, _ = np.linalg.qr(rng.normal(size=(k + extra_dims,) * 2))
        qy, _ = np.linalg.qr(rng.normal(size=(k + extra_dims,) * 2))
        X, Y = X @ qx, Y @ qy
    return X, Y


def test_closed_form_helper():
    assert mi.gaussian_closed_form([0.0]) == 0.0
    assert mi.gaussian_closed_form([0.6, 0.8]) == pytest.approx(
        -0.5 * (math.log(1 - 0.36) + math.log(1 - 0.64))
    )


def test_gaussian_estimator_equals_closed_form():
    rhos = [0.9, 0.5, 0.2]
    want = mi.gaussian_closed_form(rhos)  # 0.995 nats
    X, Y = correlated_gaussian(40_000, rhos, extra_dims=5)
    got = mi.gaussian_mi(X, Y, dims=3)  # PCA keeps the 3 high-variance components
    # sampling error of the plug-in estimate at n = 40k: ~ sqrt(sum rho^2 ... / n) ~ 0.005
    assert got == pytest.approx(want, abs=0.02)
    # without PCA the estimate is exactly the plug-in closed form of the sample covariance
    X2, Y2 = correlated_gaussian(2_000, rhos, seed=1)
    S = np.cov(np.concatenate([X2, Y2], 1), rowvar=False)
    exact = 0.5 * (np.linalg.slogdet(S[:3, :3])[1] + np.linalg.slogdet(S[3:, 3:])[1]
                   - np.linalg.slogdet(S)[1])
    assert mi.gaussian_mi(X2, Y2, dims=None, ridge=0.0) == pytest.approx(exact, rel=1e-9)


def test_knn_estimator_close_to_closed_form():
    rhos = [0.8, 0.5]
    want = mi.gaussian_closed_form(rhos)  # 0.654
    X, Y = correlated_gaussian(1_500, rhos, seed=2)
    got = mi.knn_mi(X, Y, k=3, dims=2)
    assert got == pytest.approx(want, abs=0.08)  # KSG bias + noise at n = 1.5k
    indep = mi.knn_mi(*correlated_gaussian(1_000, [0.0, 0.0], seed=3), dims=2)
    assert indep < 0.05


def test_digamma():
    from math import lgamma

    for x in (1.0, 2.5, 7.0, 100.0):
        h = 1e-5
        numeric = (lgamma(x + h) - lgamma(x - h)) / (2 * h)
        assert mi._digamma(np.array([x]))[0] == pytest.approx(numeric, abs=1e-6)


def test_pairs_lowest_mi_one_per_target_layer(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 4))
    expert = {0: base + 0.1 * rng.normal(size=base.shape), 1: rng.normal(size=(300, 4))}
    target = {0: base, 1: base + 0.5 * rng.normal(size=base.shape), 2: rng.normal(size=(300, 4))}
    matrix, e_layers, t_layers = mi.mi_matrix(expert, target, estimator="gaussian", dims=4)
    assert matrix.shape == (2, 3) and e_layers == [0, 1] and t_layers == [0, 1, 2]
    assert matrix[0, 0] > matrix[0, 1] > matrix[0, 2]
    pairs = mi.lowest_mi_pairs(matrix, e_layers, t_layers, 2)
    assert len({j for _, j in pairs}) == 2
    flat_min = np.unravel_index(np.argmin(matrix), matrix.shape)
    assert pairs[0] == (e_layers[flat_min[0]], t_layers[flat_min[1]])
    path = mi.plot_mi_matrix(str(tmp_path / "mi.png"), matrix, e_layers, t_layers, pairs)
    assert os.path.getsize(path) > 1000
    with pytest.raises(ValueError, match="num_pairs"):
        mi.lowest_mi_pairs(matrix, e_layers, t_layers, 4)
    with pytest.raises(ValueError, match="unknown MI estimator"):
        mi.mi_matrix(expert, target, estimator="binning")
    with pytest.raises(ValueError, match="same inputs"):
        mi.gaussian_mi(np.zeros((5, 2)), np.zeros((6, 2)))
