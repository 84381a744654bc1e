"""Per-token log-probabilities of prompts with their top alternatives (OpenAI ``echo``).

``prompt_logprobs(engine, prompts, top_n)`` -> for each prompt, ``(logprobs, tops)``:
log p(t_i | t_<i) for i >= 1 (the first token has none) and, when ``top_n`` > 0, the
``top_n`` most likely (id, logprob) pairs at each of those positions, both read from the
same log-softmax so that "is the token the argmax" is an exact comparison (lm-eval's
``local-completions`` is_greedy test). Rows are right-padded to bucketed lengths and run
one jitted forward per bucket, like ``scoring.loglikelihood``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.inference.batching import (
    PAD_ID,
    bucket_batch,
    bucket_length,
    length_batches,
    mesh_scope,
    put_batch,
)
from eurollm_jax.inference.engine import MAX_TOP_LOGPROBS


@functools.partial(jax.jit, static_argnames=("graphdef", "top_n"))
def _prompt_scores(graphdef, params, inputs_BT, *, top_n):
    model = nnx.merge(graphdef, params)
    logits = model.forward(inputs_BT).logits.astype(jnp.float32)
    logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
    target = jnp.take_along_axis(logp, inputs_BT[:, 1:, None], axis=-1)[..., 0]
    top_lp, top_id = jax.lax.top_k(logp, max(top_n, 1))
    return target, top_id.astype(jnp.int32), top_lp


def prompt_logprobs(engine, prompts, top_n: int = 0, *, max_batch_tokens: int = 8192):
    """[(token logprobs (len - 1), [(ids, logprobs)] per position or None)] per prompt."""
    if not 0 <= int(top_n) <= MAX_TOP_LOGPROBS:
        raise ValueError(f"top_n must be in [0, {MAX_TOP_LOGPROBS}], got {top_n}")
    top_bucket = 0 if top_n == 0 else 5 if top_n <= 5 else MAX_TOP_LOGPROBS
    results = [None] * len(prompts)
    mesh = engine.mesh
    for rows in length_batches([len(p) for p in prompts], max_batch_tokens):
        t_len = bucket_length(len(prompts[rows[0]]))
        b = bucket_batch(len(rows), mesh)
        inputs = np.full((b, t_len), PAD_ID, np.int32)
        for r, i in enumerate(rows):
            inputs[r, : len(prompts[i])] = prompts[i]
        with mesh_scope(mesh):
            out = _prompt_scores(
                engine.graphdef, engine.params, put_batch(inputs, mesh), top_n=top_bucket
            )
        target, top_id, top_lp = jax.device_get(out)
        for r, i in enumerate(rows):
            n = len(prompts[i]) - 1
            lps = target[r, :n].astype(np.float64).tolist()
            tops = None
            if top_n:
                tops = [
                    (top_id[r, j, :top_n].tolist(), top_lp[r, j, :top_n].astype(np.float64).tolist())
                    for j in range(n)
                ]
            results[i] = (lps, tops)
    return results
