"""Mutual information between two sets of representations of the same inputs, and the
ExpertSteer layer pairing built on it.

Estimators (pluggable: ``ESTIMATORS[name](X, Y, **kwargs)`` -> nats):

- ``gaussian_mi``: both sides reduced by PCA to ``dims`` components (fitted on the data),
  then the Gaussian closed form I = 1/2 log(det S_X det S_Y / det S_XY) from the sample
  covariance of the joint [X_p, Y_p] (float64). Exact for jointly Gaussian data.
- ``knn_mi``: the Kraskov-Stoegbauer-Grassberger estimator (algorithm 1): after the same
  PCA and per-component standardisation, with max-norm distances in the joint space,
  I = psi(k) + psi(n) - < psi(n_x + 1) + psi(n_y + 1) >, where n_x, n_y count the points
  strictly closer than the k-th joint neighbour in each marginal space. Non-parametric;
  brute-force distances in row blocks (O(n^2 dims)).

``mi_matrix`` fills [expert layers, target layers]; ``lowest_mi_pairs`` picks the pairs
whose representations differ most (lowest MI), each target layer at most once (two pairs
at one target layer would add two vectors at the same place); ``plot_mi_matrix`` draws
the matrix with the chosen pairs marked.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np


def _matrix(X, name) -> np.ndarray:
    X = np.asarray(X, np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be [n, d], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} has non-finite values")
    return X


def pca_reduce(X, dims: int) -> np.ndarray:
    """The first ``dims`` principal-component scores of ``X`` (centred; all when fewer)."""
    X = _matrix(X, "X")
    Xc = X - X.mean(0)
    k = min(int(dims), X.shape[1], X.shape[0] - 1)
    if k < 1:
        raise ValueError(f"PCA needs dims >= 1 and at least 2 points; got dims={dims}, n={len(X)}")
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return Xc @ vt[:k].T


def _pair(X, Y, dims):
    X, Y = _matrix(X, "X"), _matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must describe the same inputs: {X.shape[0]} vs {Y.shape[0]} rows")
    if X.shape[0] < 3:
        raise ValueError(f"MI needs at least 3 points, got {X.shape[0]}")
    if dims is not None:
        X, Y = pca_reduce(X, dims), pca_reduce(Y, dims)
    return X, Y


def gaussian_mi(X, Y, *, dims: int | None = 4, ridge: float = 1e-9) -> float:
    """Gaussian mutual information (nats) after PCA to ``dims`` (None: no reduction)."""
    X, Y = _pair(X, Y, dims)
    dx = X.shape[1]
    S = np.cov(np.concatenate([X, Y], axis=1), rowvar=False)
    S = S + ridge * np.trace(S) / len(S) * np.eye(len(S))  # rank-deficient inputs stay finite
    _, ld_x = np.linalg.slogdet(S[:dx, :dx])
    _, ld_y = np.linalg.slogdet(S[dx:, dx:])
    _, ld_xy = np.linalg.slogdet(S)
    return float(max(0.5 * (ld_x + ld_y - ld_xy), 0.0))


def _digamma(x):
    """psi(x) for x >= 1 (recurrence to x >= 6, then the asymptotic series)."""
    x = np.asarray(x, np.float64).copy()
    out = np.zeros_like(x)
    while (small := x < 6).any():
        out[small] -= 1.0 / x[small]
        x[small] += 1.0
    inv2 = 1.0 / (x * x)
    out += (np.log(x) - 0.5 / x
            - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132)))))
    return out


def knn_mi(X, Y, *, k: int = 3, dims: int | None = 4, block_size: int = 512) -> float:
    """Kraskov (KSG-1) mutual information (nats) after PCA to ``dims``."""
    X, Y = _pair(X, Y, dims)
    n = X.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n={n}), got {k}")
    X = (X - X.mean(0)) / np.maximum(X.std(0), 1e-12)
    Y = (Y - Y.mean(0)) / np.maximum(Y.std(0), 1e-12)
    nx = np.zeros(n)
    ny = np.zeros(n)
    for start in range(0, n, block_size):
        sl = slice(start, min(start + block_size, n))
        dx = np.abs(X[sl, None, :] - X[None, :, :]).max(-1)  # [b, n]
        dy = np.abs(Y[sl, None, :] - Y[None, :, :]).max(-1)
        dz = np.maximum(dx, dy)
        rows = np.arange(sl.start, sl.stop)
        dz[np.arange(len(rows)), rows] = np.inf  # a point is not its own neighbour
        eps = np.partition(dz, k - 1, axis=1)[:, k - 1]
        dx[np.arange(len(rows)), rows] = np.inf
        dy[np.arange(len(rows)), rows] = np.inf
        nx[sl] = (dx < eps[:, None]).sum(1)
        ny[sl] = (dy < eps[:, None]).sum(1)
    mi = _digamma(k)[()] + _digamma(n)[()] - np.mean(_digamma(nx + 1) + _digamma(ny + 1))
    return float(max(mi, 0.0))


ESTIMATORS: dict[str, Callable[..., float]] = {"gaussian": gaussian_mi, "knn": knn_mi}


def gaussian_closed_form(correlations: Sequence[float]) -> float:
    """MI of X, Y jointly Gaussian with independent coordinate pairs of correlation rho_i:
    -1/2 sum log(1 - rho_i^2)."""
    return float(-0.5 * sum(math.log(1.0 - r * r) for r in correlations))


def mi_matrix(
    expert_states: Mapping[int, np.ndarray],
    target_states: Mapping[int, np.ndarray],
    *,
    estimator: str | Callable[..., float] = "gaussian",
    **kwargs,
) -> tuple[np.ndarray, list[int], list[int]]:
    """MI between every (aligned expert layer i, target layer j): ([len(E), len(T)], the
    expert layers, the target layers)."""
    fn = ESTIMATORS.get(estimator) if isinstance(estimator, str) else estimator
    if fn is None:
        raise ValueError(f"unknown MI estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
    e_layers, t_layers = sorted(expert_states), sorted(target_states)
    out = np.zeros((len(e_layers), len(t_layers)))
    for a, i in enumerate(e_layers):
        for b, j in enumerate(t_layers):
            out[a, b] = fn(expert_states[i], target_states[j], **kwargs)
    return out, e_layers, t_layers


def lowest_mi_pairs(
    matrix: np.ndarray, expert_layers: Sequence[int], target_layers: Sequence[int], num_pairs: int
) -> list[tuple[int, int]]:
    """The ``num_pairs`` (expert, target) layer pairs with the lowest MI, greedily, each
    target layer used once."""
    matrix = np.asarray(matrix)
    if num_pairs < 1 or num_pairs > len(target_layers):
        raise ValueError(
            f"num_pairs must be in [1, {len(target_layers)}] (one per target layer), got {num_pairs}"
        )
    pairs, used = [], set()
    for flat in np.argsort(matrix, axis=None, kind="stable"):
        a, b = np.unravel_index(flat, matrix.shape)
        if b in used:
            continue
        pairs.append((int(expert_layers[a]), int(target_layers[b])))
        used.add(b)
        if len(pairs) == num_pairs:
            break
    return pairs


def plot_mi_matrix(path: str, matrix, expert_layers, target_layers, pairs=(), title="") -> str:
    """Heat map of the MI matrix (expert layers down, target layers across), pairs boxed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eurollm_jax.fileio import atomic_open

    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(target_layers), 1.0 + 0.5 * len(expert_layers)))
    im = ax.imshow(np.asarray(matrix), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(target_layers)), [str(j) for j in target_layers])
    ax.set_yticks(range(len(expert_layers)), [str(i) for i in expert_layers])
    ax.set_xlabel("target layer")
    ax.set_ylabel("expert layer")
    for i, j in pairs:
        a, b = list(expert_layers).index(i), list(target_layers).index(j)
        ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, color="red", lw=2))
    fig.colorbar(im, ax=ax, label="MI (nats)")
    ax.set_title(title or "MI(aligned expert, target)")
    fig.tight_layout()
    with atomic_open(path, "wb", encoding=None) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path
