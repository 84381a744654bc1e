"""HBO's rewards, computed purely on the trainer's current params (never changing them).

- ``grad_norm(params, batch)``: the L2 norm of the full-parameter gradient of the LM loss
  (the train step's loss without z-loss, ``train.row_loss_sums``) on one batch, before
  clipping. Under ``jit`` with the params' shardings the norm is over the whole gradient:
  XLA reduces the sharded pieces, and the result is replicated on every device, so every
  process reads the same number.
- ``row_losses(params, batch)``: per row, the NLL sum and the number of targets (response
  tokens for SFT rows, whose loss mask covers only the assistant's tokens).

``global_rewards`` and ``ppl_ratios`` turn these into ``R_G(i)`` (mean gradient norm over
small batches of subset ``i``) and the raw per-example ``PPL_now / PPL_init``; nothing here
touches the optimizer state, the RNG or the data iterator, and no buffer is donated.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from eurollm_jax.parallel import ShardingError, batch_sharding, host_batch_layout, make_global_batch
from eurollm_jax.train import row_loss_sums

from eurollm_jax.hbo.buckets import rows_batch

BATCH_FIELDS = ("tokens", "segment_ids", "positions", "loss_mask")


# Jitted reward functions per train-state spec (the trainer reuses a job's spec across runs
# of one config in a process, so a resumed or repeated run compiles nothing new).
_JITTED: dict[int, tuple] = {}


def _jitted(job):
    key = id(job.spec)
    if key not in _JITTED or _JITTED[key][0] is not job.spec:
        if len(_JITTED) >= 4:
            _JITTED.pop(next(iter(_JITTED)))
        _JITTED[key] = (job.spec, *_build(job))
    return _JITTED[key][1:]


def _build(job):
    mesh = job.mesh
    row_fn = functools.partial(row_loss_sums, job.spec.graphdef, job.model_cfg)

    def lm_loss(params, batch):
        nll, targets = row_fn(params, batch)
        return jnp.sum(nll) / jnp.maximum(jnp.sum(targets), 1.0)

    def grad_norm(params, batch):
        return optax.tree.norm(jax.grad(lm_loss)(params, batch))

    p_sh = job.spec.shardings["params"]
    b_sh = {k: batch_sharding(mesh, 2) for k in BATCH_FIELDS}
    rep = NamedSharding(mesh, PartitionSpec())
    return (jax.jit(grad_norm, in_shardings=(p_sh, b_sh), out_shardings=rep),
            jax.jit(row_fn, in_shardings=(p_sh, b_sh), out_shardings=rep))


class RewardModel:
    """Jitted, non-donating reward functions on a trainer ``Job``'s mesh and shardings."""

    def __init__(self, job, rows: int):
        self.mesh = job.mesh
        self.seq_len = job.settings.train.seq_len
        self.rows = int(rows)
        try:
            host_batch_layout(self.mesh, self.rows)
        except ShardingError as e:
            raise ValueError(f"hbo.reward_rows={self.rows} over this mesh: {e}") from e
        self._grad_norm, self._rows = _jitted(job)

    def _put(self, examples) -> dict:
        batch = rows_batch(examples, self.rows, self.seq_len)
        return make_global_batch(batch, self.mesh, self.rows, dtype=np.int32)

    def grad_norm(self, params, examples) -> float:
        """Gradient norm of the LM loss on ``examples`` (at most ``rows``)."""
        with jax.set_mesh(self.mesh):
            return float(jax.device_get(self._grad_norm(params, self._put(examples))))

    def row_losses(self, params, examples: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """``(nll sum, targets)`` per example, float64, in ``rows``-row batches."""
        nll, targets = [], []
        with jax.set_mesh(self.mesh):
            for start in range(0, len(examples), self.rows):
                chunk = list(examples[start:start + self.rows])
                n, t = jax.device_get(self._rows(params, self._put(chunk)))
                nll.append(np.asarray(n, np.float64)[: len(chunk)])
                targets.append(np.asarray(t, np.float64)[: len(chunk)])
        if not nll:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(nll), np.concatenate(targets)

    def mean_nll(self, params, examples: Sequence) -> np.ndarray:
        """Mean NLL per target token of each example (``log PPL``)."""
        nll, targets = self.row_losses(params, examples)
        if np.any(targets <= 0):
            bad = int(np.flatnonzero(targets <= 0)[0])
            raise ValueError(f"example {bad} has no training target within train.seq_len")
        return nll / targets

    def token_loss(self, params, examples: Sequence) -> float:
        """Held-out style loss: total NLL / total targets over ``examples``."""
        nll, targets = self.row_losses(params, examples)
        return float(nll.sum() / max(targets.sum(), 1.0))


def ppl_ratios(now_mean_nll: np.ndarray, init_mean_nll: np.ndarray) -> np.ndarray:
    """``PPL(now) / PPL(init)`` per example, from mean NLLs (float64)."""
    return np.exp(np.asarray(now_mean_nll, np.float64) - np.asarray(init_mean_nll, np.float64))


def normalise_over_buckets(raw: np.ndarray) -> np.ndarray:
    """``R_L(i, j) / mean_j R_L(i, j)``."""
    raw = np.asarray(raw, np.float64)
    return raw / raw.mean()
