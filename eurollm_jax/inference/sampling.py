"""Token sampling for the decode loop: greedy, temperature, top-k and top-p, per row.

Every parameter is a per-row array ([B]) so that one compiled decode serves a batch of
requests with different settings (the server batches them). Randomness is explicit:
row ``b`` at decode step ``t`` draws from ``fold_in(fold_in(PRNGKey(seed_b), stream_b), t)``,
so a row's sample does not depend on which other rows share its batch.

Order of operations follows transformers' logits processors: temperature, then top-k,
then top-p (over the renormalised top-k distribution). A row with temperature 0 is
greedy (argmax of the raw logits). Reported log-probabilities are always those of the
*raw* model distribution (``log_softmax(logits)``), before temperature or filtering.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


def filter_logits(logits_BV, top_k_B, top_p_B):
    """Mask (to -inf) every token outside each row's top-k and top-p nucleus.

    ``top_k_B`` <= 0 disables top-k for that row; ``top_p_B`` >= 1 disables top-p.
    Tokens tied with the last kept logit are kept too.
    """
    v = logits_BV.shape[-1]
    sorted_BV = -jnp.sort(-logits_BV, axis=-1)  # descending
    rank_V = jnp.arange(v, dtype=jnp.int32)
    k_B = jnp.where(top_k_B > 0, jnp.minimum(top_k_B, v), v).astype(jnp.int32)
    in_k_BV = rank_V[None, :] < k_B[:, None]
    probs_BV = jax.nn.softmax(jnp.where(in_k_BV, sorted_BV, NEG_INF), axis=-1)
    mass_before_BV = jnp.cumsum(probs_BV, axis=-1) - probs_BV
    keep_BV = in_k_BV & ((mass_before_BV < top_p_B[:, None]) | (rank_V[None, :] == 0))
    n_keep_B = jnp.maximum(jnp.sum(keep_BV, axis=-1), 1)
    cutoff_B1 = jnp.take_along_axis(sorted_BV, (n_keep_B - 1)[:, None], axis=-1)
    return jnp.where(logits_BV >= cutoff_B1, logits_BV, NEG_INF)


def row_keys(seeds_B, streams_B, step):
    """Per-row PRNG keys for decode step ``step`` (raw uint32 keys, [B, 2])."""

    def one(seed, stream):
        key = jax.random.PRNGKey(seed)
        return jax.random.fold_in(jax.random.fold_in(key, stream), step)

    return jax.vmap(one)(seeds_B.astype(jnp.uint32), streams_B.astype(jnp.uint32))


def sample_tokens(logits_BV, *, temperature_B, top_k_B, top_p_B, keys_B2, mode: str):
    """Next token per row. ``mode`` is static: "greedy" (every row has temperature 0),
    "sample" (no row filters), or "filter" (some row uses top-k or top-p)."""
    greedy_B = jnp.argmax(logits_BV, axis=-1).astype(jnp.int32)
    if mode == "greedy":
        return greedy_B
    safe_t_B = jnp.where(temperature_B > 0, temperature_B, 1.0).astype(jnp.float32)
    scaled_BV = logits_BV.astype(jnp.float32) / safe_t_B[:, None]
    if mode == "filter":
        scaled_BV = filter_logits(scaled_BV, top_k_B, top_p_B)
    elif mode != "sample":
        raise ValueError(f"unknown sampling mode {mode!r}")
    sampled_B = jax.vmap(jax.random.categorical)(keys_B2, scaled_BV)
    return jnp.where(temperature_B > 0, sampled_B.astype(jnp.int32), greedy_B)


def sampling_mode(temperatures, top_ks, top_ps) -> str:
    """The static sampling mode for a batch of (host-side) per-row settings."""
    if all(float(t) == 0.0 for t in temperatures):
        return "greedy"
    sampled = [i for i, t in enumerate(temperatures) if float(t) > 0.0]
    if any(int(top_ks[i]) > 0 or float(top_ps[i]) < 1.0 for i in sampled):
        return "filter"
    return "sample"
