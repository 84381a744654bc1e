"""ExpertSteer: steering a target model with vectors from an external expert model.

Public surface:
- ``fit_rfm(X, y, *, bandwidth=10.0, reg=1e-3, iters=5, center_grads=False)`` -> ``RFM``
  (``.M``, ``.alpha``, ``.direction``, ``.predict``); ``select_rfm`` (validation AUC).
"""

from eurollm_jax.steering.rfm import RFM, fit_rfm, roc_auc, select_rfm

__all__ = ["RFM", "fit_rfm", "select_rfm", "roc_auc"]
