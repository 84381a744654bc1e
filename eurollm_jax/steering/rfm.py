"""Recursive Feature Machines (RFM) in JAX: the steering direction of a concept.

``fit_rfm(X, y)`` runs the RFM iteration with the Mahalanobis-Laplace kernel
``K_M(x, z) = exp(-||x - z||_M / L)``, ``||u||_M = sqrt(u^T M u)``, starting from M_0 = I:

    for t = 1..iters:
        alpha = (K_{M_{t-1}}(X, X) + reg I)^-1 y
        grad_i = (1/L) sum_j alpha_j K(x_i, x_j) / ||x_i - x_j||_M * M_{t-1} (x_j - x_i)
                 (terms with distance < 1e-10, and j = i, skipped)
        M_t = (1/n) sum_i grad_i grad_i^T          (gradients centred first if asked)

and returns ``RFM`` with ``.M`` (the average gradient outer product, AGOP, of the last
iteration, not rescaled), ``.alpha`` (the last kernel weights), ``.kernel_M`` (the metric
those weights were fitted with: the predictor is ``f(x) = sum_j alpha_j K_{kernel_M}(x,
x_j)``) and ``.direction`` (the unit top eigenvector of M, signed so that <x, direction>
correlates positively with y).

Memory: the n x n quantities are built in row blocks (``block_size`` rows at a time): the
kernel matrix (needed whole for the solve) and the distances (kept, so the gradient step
reuses them), and per block the weights and gradients; the peak is about
3 n^2 + 4 n d + 2 d^2 floats plus one block's n x block temporaries (n = 4,096,
d = 4,096: ~0.6 GB in float32). Per iteration: one X M, one n^2 d distance product, the
solve, one n^2 d weighted sum and the d^2 n outer product. The solve is an LU factorisation with two
steps of iterative refinement (float32 without them loses digits on kernel matrices
whose ridge is small).

``select_rfm`` picks the bandwidth and ridge on a validation split by AUC.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

SKIP_DISTANCE = 1e-10  # kernel-gradient terms closer than this are skipped


@dataclasses.dataclass(frozen=True)
class RFM:
    """A fitted RFM: see the module docstring for what each field is."""

    M: np.ndarray  # [d, d] AGOP of the last iteration
    alpha: np.ndarray  # [n]
    direction: np.ndarray  # [d] unit top eigenvector of M, signed by corr with y
    kernel_M: np.ndarray  # [d, d] metric of the last kernel (M_{iters-1})
    X_train: np.ndarray  # [n, d]
    bandwidth: float
    reg: float
    iters: int
    top_eigenvalue: float

    def predict(self, X, *, block_size: int = 1024) -> np.ndarray:
        """The kernel predictor f(x) = sum_j alpha_j K(x, x_j) for each row of ``X``."""
        X = _as_matrix(X, "X")
        if X.shape[1] != self.X_train.shape[1]:
            raise ValueError(
                f"X has width {X.shape[1]} but the RFM was fitted on width {self.X_train.shape[1]}"
            )
        out = []
        for start in range(0, X.shape[0], block_size):
            out.append(
                np.asarray(
                    _predict_block(
                        jnp.asarray(X[start : start + block_size]),
                        jnp.asarray(self.X_train),
                        jnp.asarray(self.kernel_M),
                        jnp.asarray(self.alpha),
                        self.bandwidth,
                    )
                )
            )
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def _as_matrix(X, name) -> np.ndarray:
    X = np.asarray(X, np.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a matrix [n, d], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} has non-finite values")
    return X


@jax.jit
def _predict_block(Xb, X, M, alpha, bandwidth):
    dist = _distances(Xb, X, M)
    return jnp.exp(-dist / bandwidth) @ alpha


def _distances(A, B, M):
    """||a_i - b_j||_M for the rows of A and B: [len(A), len(B)]."""
    AM, BM = A @ M, B @ M
    sq = jnp.sum(AM * A, axis=1)[:, None] + jnp.sum(BM * B, axis=1)[None, :] - 2.0 * (AM @ B.T)
    return jnp.sqrt(jnp.maximum(sq, 0.0))


def _blocks(n: int, block_size: int):
    n_blocks = -(-n // block_size)
    return n_blocks, n_blocks * block_size


@functools.partial(jax.jit, static_argnames=("block_size",))
def _kernel_and_distances(X, M, bandwidth, *, block_size: int):
    """(K, D, XM): the kernel matrix, the distances ||x_i - x_j||_M (exact zero diagonal)
    and X M, built ``block_size`` rows at a time."""
    n = X.shape[0]
    n_blocks, padded = _blocks(n, block_size)
    XM = X @ M
    sq = jnp.sum(XM * X, axis=1)
    XMp = jnp.pad(XM, ((0, padded - n), (0, 0)))
    sqp = jnp.pad(sq, (0, padded - n))

    def row_block(b):
        start = b * block_size
        rows_M = jax.lax.dynamic_slice_in_dim(XMp, start, block_size)
        rows_sq = jax.lax.dynamic_slice_in_dim(sqp, start, block_size)
        dist = jnp.sqrt(jnp.maximum(rows_sq[:, None] + sq[None, :] - 2.0 * (rows_M @ X.T), 0.0))
        idx = start + jnp.arange(block_size)
        dist = jnp.where(idx[:, None] == jnp.arange(n)[None, :], 0.0, dist)
        return jnp.exp(-dist / bandwidth), dist

    K, D = jax.lax.map(row_block, jnp.arange(n_blocks))
    return K.reshape(padded, n)[:n], D.reshape(padded, n)[:n], XM


@jax.jit
def _solve(K, y, reg):
    A = K + reg * jnp.eye(K.shape[0], dtype=K.dtype)
    lu = jax.scipy.linalg.lu_factor(A)
    alpha = jax.scipy.linalg.lu_solve(lu, y)
    for _ in range(2):  # iterative refinement
        alpha = alpha + jax.scipy.linalg.lu_solve(lu, y - A @ alpha)
    return alpha


@functools.partial(jax.jit, static_argnames=("block_size", "center"))
def _agop(K, D, XM, alpha, bandwidth, *, block_size: int, center: bool):
    """(1/n) sum_i grad_i grad_i^T with grad_i = (1/L) sum_j W_ij (x_j - x_i) M,
    W_ij = alpha_j K_ij / D_ij (skipped terms: W_ij = 0); (x_j - x_i) M = XM_j - XM_i."""
    n = K.shape[0]
    n_blocks, padded = _blocks(n, block_size)
    Kp = jnp.pad(K, ((0, padded - n), (0, 0)))
    Dp = jnp.pad(D, ((0, padded - n), (0, 0)))
    XMp = jnp.pad(XM, ((0, padded - n), (0, 0)))

    def grad_block(b):
        start = b * block_size
        k = jax.lax.dynamic_slice_in_dim(Kp, start, block_size)
        dist = jax.lax.dynamic_slice_in_dim(Dp, start, block_size)
        rows_M = jax.lax.dynamic_slice_in_dim(XMp, start, block_size)
        idx = start + jnp.arange(block_size)
        keep = (dist >= SKIP_DISTANCE) & (idx[:, None] != jnp.arange(n)[None, :])
        W = jnp.where(keep, alpha[None, :] * k / jnp.where(keep, dist, 1.0), 0.0)
        G = (W @ XM - jnp.sum(W, axis=1, keepdims=True) * rows_M) / bandwidth
        return jnp.where((idx < n)[:, None], G, 0.0)

    G = jax.lax.map(grad_block, jnp.arange(n_blocks)).reshape(padded, -1)[:n]
    if center:
        G = G - jnp.mean(G, axis=0, keepdims=True)
    return G.T @ G / n


def fit_rfm(
    X,
    y,
    *,
    bandwidth: float = 10.0,
    reg: float = 1e-3,
    iters: int = 5,
    center_grads: bool = False,
    block_size: int = 1024,
) -> RFM:
    """Fit an RFM on ``X`` [n, d] with targets ``y`` [n]; see the module docstring."""
    X = _as_matrix(X, "X")
    y = np.asarray(y, np.float32).reshape(-1)
    n, d = X.shape
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} values but X has {n} rows")
    if n < 2:
        raise ValueError(f"fit_rfm needs at least 2 points, got {n}")
    if not np.isfinite(y).all():
        raise ValueError("y has non-finite values")
    if bandwidth <= 0 or reg < 0 or iters < 1:
        raise ValueError(
            f"need bandwidth > 0, reg >= 0 and iters >= 1; got bandwidth={bandwidth}, "
            f"reg={reg}, iters={iters}"
        )
    block = int(min(block_size, n))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    bw, lam = jnp.float32(bandwidth), jnp.float32(reg)
    M = jnp.eye(d, dtype=jnp.float32)
    alpha = None
    for _ in range(iters):
        K, D, XM = _kernel_and_distances(Xj, M, bw, block_size=block)
        alpha = _solve(K, yj, lam)
        kernel_M = M
        M = _agop(K, D, XM, alpha, bw, block_size=block, center=bool(center_grads))
        del K, D, XM
    M_np = np.asarray(M)
    evals, evecs = np.linalg.eigh(M_np.astype(np.float64))
    v = evecs[:, -1]
    proj = X.astype(np.float64) @ v
    corr = np.sum((proj - proj.mean()) * (y - y.mean()))
    if corr < 0:
        v = -v
    return RFM(
        M=M_np,
        alpha=np.asarray(alpha),
        direction=(v / np.linalg.norm(v)).astype(np.float32),
        kernel_M=np.asarray(kernel_M),
        X_train=X,
        bandwidth=float(bandwidth),
        reg=float(reg),
        iters=int(iters),
        top_eigenvalue=float(evals[-1]),
    )


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count half)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based average ranks (ties share)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def select_rfm(
    X_train,
    y_train,
    X_val,
    y_val,
    *,
    bandwidths: Sequence[float] = (1.0, 10.0, 100.0),
    regs: Sequence[float] = (1e-3,),
    iters: int = 5,
    center_grads: bool = False,
) -> tuple[RFM, list[dict]]:
    """The RFM whose predictor has the best validation AUC over ``bandwidths`` x ``regs``
    (refitted on train + validation), and the per-setting scores."""
    scores = []
    best = None
    for bw, lam in itertools.product(bandwidths, regs):
        model = fit_rfm(X_train, y_train, bandwidth=bw, reg=lam, iters=iters,
                        center_grads=center_grads)
        pred = model.predict(X_val)
        auc = roc_auc(pred, y_val) if np.isfinite(pred).all() else float("nan")
        scores.append({"bandwidth": float(bw), "reg": float(lam), "val_auc": auc})
        if np.isfinite(auc) and (best is None or auc > best[0]):
            best = (auc, bw, lam)
    if best is None:
        raise ValueError("no bandwidth/reg setting gave a finite validation AUC")
    X_all = np.concatenate([np.asarray(X_train), np.asarray(X_val)])
    y_all = np.concatenate([np.asarray(y_train), np.asarray(y_val)])
    final = fit_rfm(X_all, y_all, bandwidth=best[1], reg=best[2], iters=iters,
                    center_grads=center_grads)
    return final, scores
