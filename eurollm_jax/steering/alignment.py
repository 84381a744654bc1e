"""Dimension alignment between an expert and a target model, and the check that an aligned
direction means something on the target's side.

- ``fit_autoencoder(H_expert, d_target)``: the affine auto-encoder of one expert layer,
  encoder f(h) = W h + b (d_expert -> d_target), decoder g(z) = U z + c, trained with
  Optax (Adam, full batch) on the mean squared reconstruction error
  mean_n ||h - g(f(h))||^2 of the expert's hidden states. Inputs are standardised by one
  scalar (their RMS norm) during training and the parameters are mapped back, so W, b,
  U, c act on raw hidden states. ``paired_target`` (optional) adds
  ``paired_weight * mean ||f(h_E) - h_T||^2`` for target states of the same inputs: an
  extension (not in the method) that ties the code to the target's space.
- ``transfer_direction(ae, v)``: W v renormalised (the encoder's linear part, no bias).
- ``fit_linear_probe`` / ``probe_check``: a logistic-regression probe on target
  activations (Optax, L2) and how a transferred direction compares with it: the cosine
  to the probe's weight (in the probe's standardised coordinates mapped back) and the AUC
  of <h_T, v> for the concept labels. Reconstruction alone does not make f semantic; this
  is the check.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from eurollm_jax.steering.rfm import roc_auc


@dataclasses.dataclass(frozen=True)
class AffineAutoencoder:
    W: np.ndarray  # [d_target, d_expert] encoder
    b: np.ndarray  # [d_target]
    U: np.ndarray  # [d_expert, d_target] decoder
    c: np.ndarray  # [d_expert]
    final_loss: float  # mean squared reconstruction error on the training states (raw units)
    relative_error: float  # final_loss / mean ||h - mean h||^2
    paired_loss: float | None = None

    def encode(self, H) -> np.ndarray:
        return np.asarray(H, np.float32) @ self.W.T + self.b

    def decode(self, Z) -> np.ndarray:
        return np.asarray(Z, np.float32) @ self.U.T + self.c


def _states(H, name) -> np.ndarray:
    H = np.asarray(H, np.float32)
    if H.ndim != 2 or H.shape[0] < 2:
        raise ValueError(f"{name} must be [n >= 2, d] hidden states, got shape {H.shape}")
    if not np.isfinite(H).all():
        raise ValueError(f"{name} has non-finite values")
    return H


def fit_autoencoder(
    H_expert,
    d_target: int,
    *,
    steps: int = 500,
    learning_rate: float = 1e-2,
    seed: int = 0,
    paired_target=None,
    paired_weight: float = 0.0,
) -> AffineAutoencoder:
    """Train the affine auto-encoder of one expert layer (see the module docstring)."""
    H = _states(H_expert, "H_expert")
    n, d_e = H.shape
    scale = float(np.sqrt(np.mean(np.sum(H * H, axis=1)) / d_e)) or 1.0
    T = None
    t_scale = 1.0
    if paired_weight > 0:
        if paired_target is None:
            raise ValueError("paired_weight > 0 needs paired_target (target states of the same inputs)")
        T = _states(paired_target, "paired_target")
        if T.shape != (n, d_target):
            raise ValueError(f"paired_target must be [{n}, {d_target}], got {T.shape}")
        t_scale = float(np.sqrt(np.mean(np.sum(T * T, axis=1)) / d_target)) or 1.0
    k_w, k_u = jax.random.split(jax.random.PRNGKey(seed))
    params = {
        "W": jax.random.normal(k_w, (d_target, d_e)) / np.sqrt(d_e),
        "b": jnp.zeros((d_target,)),
        "U": jax.random.normal(k_u, (d_e, d_target)) / np.sqrt(d_target),
        "c": jnp.zeros((d_e,)),
    }
    Hs = jnp.asarray(H / scale)
    Ts = jnp.asarray(T / t_scale) if T is not None else None
    weight = float(paired_weight)

    def losses(p):
        Z = Hs @ p["W"].T + p["b"]
        R = Z @ p["U"].T + p["c"]
        rec = jnp.mean(jnp.sum((Hs - R) ** 2, axis=1))
        pair = jnp.mean(jnp.sum((Z - Ts) ** 2, axis=1)) if Ts is not None else jnp.float32(0)
        return rec, pair

    def loss_fn(p):
        rec, pair = losses(p)
        return rec + weight * pair

    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.05))
    state = opt.init(params)

    @jax.jit
    def run(params, state):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss_fn)(p)
            updates, s = opt.update(g, s, p)
            return (optax.apply_updates(p, updates), s), None

        (params, state), _ = jax.lax.scan(step, (params, state), None, length=steps)
        return params, state

    params, _ = run(params, state)
    rec, pair = (float(x) for x in losses(params))
    # Back to raw units: z_raw = t_scale * (W (h/scale) + b) when paired, else W (h/scale) + b.
    z_scale = t_scale if T is not None else 1.0
    W = np.asarray(params["W"]) * (z_scale / scale)
    b = np.asarray(params["b"]) * z_scale
    U = np.asarray(params["U"]) * (scale / z_scale)
    c = np.asarray(params["c"]) * scale
    var = float(np.mean(np.sum((H - H.mean(0)) ** 2, axis=1)))
    raw_rec = rec * scale**2
    return AffineAutoencoder(
        W=W.astype(np.float32), b=b.astype(np.float32), U=U.astype(np.float32),
        c=c.astype(np.float32), final_loss=raw_rec,
        relative_error=raw_rec / var if var > 0 else 0.0,
        paired_loss=pair * t_scale**2 if T is not None else None,
    )


def transfer_direction(ae: AffineAutoencoder, v) -> np.ndarray:
    """The expert direction ``v`` in the target space: W v (no bias), unit norm."""
    u = ae.W @ np.asarray(v, np.float32).reshape(-1)
    norm = float(np.linalg.norm(u))
    if norm == 0:
        raise ValueError("the encoder maps this direction to zero; it cannot be transferred")
    return (u / norm).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    weight: np.ndarray  # [d] in raw coordinates: logit = <h, weight> + bias
    bias: float
    train_auc: float

    def logits(self, H) -> np.ndarray:
        return np.asarray(H, np.float32) @ self.weight + self.bias


def fit_linear_probe(H, y, *, steps: int = 300, learning_rate: float = 0.05,
                     l2: float = 1e-3) -> LinearProbe:
    """Logistic regression of binary ``y`` on states ``H`` (standardised inside)."""
    H = _states(H, "H")
    y = np.asarray(y, np.float32).reshape(-1)
    if y.shape[0] != H.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but H has {H.shape[0]} rows")
    if len(np.unique(y)) != 2:
        raise ValueError("the probe needs both classes in y")
    mu, sd = H.mean(0), H.std(0) + 1e-6
    Hs, yj = jnp.asarray((H - mu) / sd), jnp.asarray(y)

    def loss_fn(p):
        z = Hs @ p["w"] + p["b"]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(z, yj)) + l2 * jnp.sum(p["w"] ** 2)

    opt = optax.adam(learning_rate)
    params = {"w": jnp.zeros(H.shape[1]), "b": jnp.zeros(())}

    @jax.jit
    def run(params):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss_fn)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return p

    p = run(params)
    w = np.asarray(p["w"]) / sd
    b = float(p["b"]) - float(mu @ w)
    probe = LinearProbe(weight=w.astype(np.float32), bias=b, train_auc=0.0)
    return dataclasses.replace(probe, train_auc=roc_auc(probe.logits(H), y))


def probe_check(H_target, y, direction, probe: LinearProbe | None = None) -> dict:
    """How well ``direction`` (in the target space) carries the concept on the target's
    activations: the AUC of <h, direction>, and the cosine to a linear probe's weight."""
    H = _states(H_target, "H_target")
    v = np.asarray(direction, np.float32).reshape(-1)
    if v.shape[0] != H.shape[1]:
        raise ValueError(f"direction has size {v.shape[0]}, target states have width {H.shape[1]}")
    probe = probe or fit_linear_probe(H, y)
    w = probe.weight / (np.linalg.norm(probe.weight) + 1e-12)
    return {
        "projection_auc": roc_auc(H @ v, y),
        "probe_cosine": float(w @ (v / (np.linalg.norm(v) + 1e-12))),
        "probe_train_auc": probe.train_auc,
    }
