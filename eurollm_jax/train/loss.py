"""Next-token cross-entropy on packed rows, with the shift done here.

A batch row holds ``tokens`` [B, T]; ``segment_ids`` (1..n per packed document, 0 =
padding), ``positions`` and ``loss_mask`` (1 where the token at that position is a
training target). The prediction made at position t is scored against the token at
t + 1 when ``loss_mask[t+1] == 1`` and ``segment_ids[t+1] == segment_ids[t] != 0``
(never across a document boundary, never on padding). An optional ``labels`` [B, T]
replaces ``tokens`` as the targets (default: the tokens themselves).

Losses are returned as *sums* plus the target count, so the caller normalises by the
global number of targets (across micro-batches and devices), never per micro-batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from eurollm_jax.model.transformer import dense
from eurollm_jax.parallel.rules import constrain


def target_weights(batch) -> jax.Array:
    """[B, T] fp32: 1 where the prediction at t is scored (against position t + 1)."""
    seg = batch["segment_ids"]
    mask = batch["loss_mask"]
    ok = (mask[:, 1:] > 0) & (seg[:, 1:] == seg[:, :-1]) & (seg[:, :-1] != 0)
    pad = jnp.zeros((seg.shape[0], 1), bool)
    return jnp.concatenate([ok, pad], axis=1).astype(jnp.float32)


def shifted_targets(batch) -> jax.Array:
    """[B, T] int32: the token each position predicts (0 in the last column, unweighted)."""
    labels = batch.get("labels", batch["tokens"])
    return jnp.concatenate([labels[:, 1:], jnp.zeros_like(labels[:, :1])], axis=1).astype(jnp.int32)


def token_nll(logits_BTV, targets_BT):
    """([B, T] NLL of each target, [B, T] logsumexp) in fp32, unweighted."""
    logits = logits_BTV.astype(jnp.float32)
    lse = jax.nn.logsumexp(logits, axis=-1)
    # A compare-and-select reduction rather than a gather: its gradient is a select, not a
    # scatter (much faster on CPU, the same on TPU/GPU).
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    target_logit = jnp.sum(jnp.where(vocab == targets_BT[..., None], logits, 0.0), axis=-1)
    return lse - target_logit, lse


def cross_entropy_sums(logits_BTV, targets_BT, weights_BT):
    """(sum of weighted NLL, sum of weighted logsumexp^2) in fp32."""
    nll, lse = token_nll(logits_BTV, targets_BT)
    return jnp.sum(nll * weights_BT), jnp.sum(jnp.square(lse) * weights_BT)


def restrict_vocab(kernel_DV, targets_BT, vocab_subset):
    """A softmax over ``vocab_subset`` (token ids) only, e.g. a PRM's two label tokens:
    ``([D, K] LM-head columns of the subset, [B, T] targets as indices into it)``. Every
    weighted target must be in the subset (a target outside it gets index -1, which matches
    no column)."""
    ids = jnp.asarray(vocab_subset, jnp.int32)
    match = targets_BT[..., None] == ids
    index = jnp.where(jnp.any(match, axis=-1), jnp.argmax(match, axis=-1), -1)
    return kernel_DV[:, ids], index.astype(jnp.int32)


def chunked_cross_entropy_sums(hidden_BTD, kernel_DV, targets_BT, weights_BT, chunk: int):
    """Same sums, computing the LM head ``chunk`` positions at a time with rematerialisation,
    so the full [B, T, V] logits never exist at once (a large saving at 128k vocab)."""
    b, t, d = hidden_BTD.shape
    if t % chunk:
        raise ValueError(f"train.loss_chunk ({chunk}) must divide the sequence length ({t})")
    n = t // chunk

    def split(x):
        return jnp.swapaxes(x.reshape(b, n, chunk, *x.shape[2:]), 0, 1)

    @jax.checkpoint
    def one(carry, xs):
        h, y, w = xs
        logits = dense(h, kernel_DV, preferred_element_type=jnp.float32)
        logits = constrain(logits, ("act_batch", "act_seq", "act_vocab"))
        nll, z = cross_entropy_sums(logits, y, w)
        return (carry[0] + nll, carry[1] + z), None

    zero = jnp.zeros((), jnp.float32)
    (nll, z), _ = jax.lax.scan(
        one, (zero, zero), (split(hidden_BTD), split(targets_BT), split(weights_BT))
    )
    return nll, z
