"""ExpertSteer: steering a target model with vectors from an external expert model.

Public surface:
- ``fit_rfm(X, y, *, bandwidth=10.0, reg=1e-3, iters=5, center_grads=False)`` -> ``RFM``
  (``.M``, ``.alpha``, ``.direction``, ``.predict``); ``select_rfm`` (validation AUC);
- ``collect_states`` / ``collect_residual_norms``: pooled activations through the engine,
  cached on disk;
- ``fit_autoencoder`` / ``transfer_direction`` / ``fit_linear_probe`` / ``probe_check``:
  affine alignment and its probe check;
- ``gaussian_mi`` / ``knn_mi`` / ``mi_matrix`` / ``lowest_mi_pairs``: layer pairing;
- ``caa_vector`` / ``expert_vector`` / ``steering_inputs``: vectors and the model's
  intervention inputs; ``METHODS``;
- ``run_experiment(config)`` with ``SteerJobConfig`` (``python -m launch.steer``).
See docs/steering.md.
"""

from eurollm_jax.steering.alignment import (
    AffineAutoencoder,
    LinearProbe,
    fit_autoencoder,
    fit_linear_probe,
    probe_check,
    transfer_direction,
)
from eurollm_jax.steering.collect import collect_residual_norms, collect_states
from eurollm_jax.steering.config import SteerJobConfig
from eurollm_jax.steering.experiment import run_experiment
from eurollm_jax.steering.mi import gaussian_mi, knn_mi, lowest_mi_pairs, mi_matrix
from eurollm_jax.steering.rfm import RFM, fit_rfm, roc_auc, select_rfm
from eurollm_jax.steering.vectors import METHODS, caa_vector, expert_vector, steering_inputs

__all__ = [
    "RFM", "fit_rfm", "select_rfm", "roc_auc",
    "collect_states", "collect_residual_norms",
    "AffineAutoencoder", "LinearProbe", "fit_autoencoder", "fit_linear_probe", "probe_check",
    "transfer_direction",
    "gaussian_mi", "knn_mi", "mi_matrix", "lowest_mi_pairs",
    "METHODS", "caa_vector", "expert_vector", "steering_inputs",
    "SteerJobConfig", "run_experiment",
]
