"""Steering vectors and how they enter the target model.

Methods (``METHODS``):
- ``none``: no steering;
- ``caa``: contrastive activation addition, the mean difference of the target's own
  activations (concept minus rest) at the target layer;
- ``rfm_target``: the RFM direction fitted on the target's own activations at that layer;
- ``expertsteer``: the RFM direction fitted on the expert's activations at the paired
  expert layer, mapped through that layer's encoder (W v, no bias) and renormalised;
- ``expertsteer_paired``: the same with an encoder also fitted to the paired target layer's
  states of the same inputs (``alignment.fit_autoencoder(paired_target=...)``; an
  extension of the method, which aligns by reconstruction only).

``steering_inputs(cfg, vectors, eps, norms)`` is the model's ``interventions`` array
[L, D]: eps x (typical residual norm of layer j) x v_j added after each target layer j at
every position, during prefill and decode (``inference.steering_interventions``: the
model's own intervention inputs, no second code path).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from eurollm_jax.inference import steering_interventions
from eurollm_jax.steering.alignment import AffineAutoencoder, transfer_direction
from eurollm_jax.steering.rfm import RFM

METHODS = ("none", "caa", "rfm_target", "expertsteer", "expertsteer_paired")


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n == 0:
        raise ValueError("a steering vector is zero or not finite; it has no direction")
    return v / n


def caa_vector(H, y) -> np.ndarray:
    """Unit mean difference of states ``H`` [n, d]: mean(concept) - mean(rest)."""
    H = np.asarray(H, np.float32)
    y = np.asarray(y).reshape(-1).astype(bool)
    if y.all() or not y.any():
        raise ValueError("contrastive activation addition needs both concept and other examples")
    return unit(H[y].mean(0) - H[~y].mean(0))


def expert_vector(rfm: RFM, ae: AffineAutoencoder) -> np.ndarray:
    """The expert's RFM direction in the target space (encoder's linear part, unit norm)."""
    return transfer_direction(ae, rfm.direction)


def steering_inputs(
    cfg,
    vectors: Mapping[int, np.ndarray],
    eps: float,
    norms: Mapping[int, float],
) -> np.ndarray | None:
    """The target's ``interventions`` [L, D] for unit ``vectors`` {target layer: v} at
    coefficient ``eps`` relative to each layer's typical residual norm; None when there is
    nothing to add (``eps == 0`` or no vectors): the unsteered program."""
    if not vectors or float(eps) == 0.0:
        return None
    missing = [j for j in vectors if j not in norms]
    if missing:
        raise ValueError(f"no residual norm for target layer(s) {missing}")
    return steering_interventions(
        cfg, dict(vectors), float(eps), normalize=True,
        reference_norms={j: float(norms[j]) for j in vectors},
    )
