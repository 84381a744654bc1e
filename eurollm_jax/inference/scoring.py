"""Log-likelihood scoring with lm-evaluation-harness semantics.

- ``loglikelihood``: for (context ids, continuation ids) pairs, log p(continuation |
  context) summed over the continuation tokens, whether the continuation is the greedy
  one (argmax at every position), and the per-token log-probabilities. Over-long inputs
  keep their last ``max_length + 1`` tokens (the model sees at most ``max_length``).
- ``loglikelihood_rolling``: the log-likelihood of whole documents, every token predicted
  exactly once, in windows of ``max_length`` tokens; the first token is predicted from
  a prefix token (BOS). Windows are those of lm-eval's ``get_rolling_token_windows`` with
  ``context_len=1`` made disjoint (``rolling_windows`` here).

Requests are sorted by length and packed into batches under a token budget, right-padded
to bucketed lengths. The LM head runs ``SCORE_CHUNK`` positions at a time (rows x 256 x
vocab x 4 bytes of logits at once, not the whole batch's; at a 128k vocabulary a full
8192-token batch's logits and their log-softmax would take 8 GB). Rows go to the model
unpacked (no segment ids): the pads come after every real token, so causality alone keeps
them out of every real token's view and fused kernels need no mask. One jitted function per shape bucket returns only [B, T] arrays
(target log-probabilities, greedy flags) to the host.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.inference.batching import (
    PAD_ID,
    bucket_batch,
    bucket_length,
    length_batches,
    mesh_scope,
    put_batch,
    put_replicated,
)
from eurollm_jax.inference.engine import as_engine
from eurollm_jax.model.transformer import dense
from eurollm_jax.parallel.rules import constrain


class LogLikelihood(NamedTuple):
    logprob: float
    is_greedy: bool
    token_logprobs: list[float]


class RollingLogLikelihood(NamedTuple):
    logprob: float
    num_tokens: int
    token_logprobs: list[float]


SCORE_CHUNK = 256  # positions per LM-head call in _score


@functools.partial(jax.jit, static_argnames=("graphdef", "chunk"))
def _score(graphdef, params, inputs_BT, targets_BT, interventions, intervention_scale, chunk):
    """[B, T] log p(target) and greedy flags; the LM head and its log-softmax run ``chunk``
    positions at a time, so [B, T, V] logits never exist at once."""
    model = nnx.merge(graphdef, params)
    hidden_BTD = model.forward(
        inputs_BT,
        interventions=interventions,
        intervention_scale=intervention_scale,
        logits="none",
    ).final_hidden
    kernel_DV = model.lm_head_kernel()
    b, t, _ = hidden_BTD.shape
    chunk = min(t, chunk)
    n = -(-t // chunk)
    pad = n * chunk - t
    hidden_BTD = jnp.pad(hidden_BTD, ((0, 0), (0, pad), (0, 0)))
    targets_BT = jnp.pad(targets_BT, ((0, 0), (0, pad)))

    def one(xs):
        h_BCD, y_BC = xs
        logits_BCV = dense(h_BCD, kernel_DV, preferred_element_type=jnp.float32)
        logits_BCV = constrain(logits_BCV, ("act_batch", "act_seq", "act_vocab"))
        target_BC = jnp.take_along_axis(logits_BCV, y_BC[..., None], axis=-1)[..., 0]
        lp_BC = target_BC - jax.nn.logsumexp(logits_BCV, axis=-1)
        return lp_BC, jnp.argmax(logits_BCV, axis=-1) == y_BC

    def split(x):
        return jnp.swapaxes(x.reshape(b, n, chunk, *x.shape[2:]), 0, 1)

    lp_NBC, greedy_NBC = jax.lax.map(one, (split(hidden_BTD), split(targets_BT)))
    merge = lambda x: jnp.swapaxes(x, 0, 1).reshape(b, n * chunk)[:, :t]  # noqa: E731
    return merge(lp_NBC), merge(greedy_NBC)


def loglikelihood(
    model,
    requests: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    max_length: int | None = None,
    max_batch_tokens: int = 8192,
    interventions=None,
    intervention_scale=None,
) -> list[LogLikelihood]:
    """Score continuations given contexts (token ids); results in request order.

    ``max_length`` defaults to the model's ``max_seq_len``. Each context must be
    non-empty (lm-eval gives an empty context the prefix token, e.g. BOS).
    """
    engine = as_engine(model)
    max_length = int(max_length or engine.cfg.max_seq_len)
    items = []
    for i, (ctx, cont) in enumerate(requests):
        ctx, cont = [int(t) for t in ctx], [int(t) for t in cont]
        if not ctx:
            raise ValueError(
                f"request {i}: empty context; start it with a prefix token such as BOS"
            )
        if not cont:
            raise ValueError(f"request {i}: empty continuation")
        whole = (ctx + cont)[-(max_length + 1) :]
        if len(cont) > max_length:
            raise ValueError(
                f"request {i}: continuation of {len(cont)} tokens exceeds max_length {max_length}"
            )
        for t in whole:
            if not 0 <= t < engine.cfg.vocab_size:
                raise ValueError(
                    f"request {i}: token id {t} outside the vocabulary [0, {engine.cfg.vocab_size})"
                )
        items.append((i, whole[:-1], whole[1:], len(cont)))
    if interventions is not None and np.ndim(interventions) == 3:
        raise ValueError(
            "scoring takes shared interventions [L, D]; per-row vectors are for generate"
        )
    mesh = engine.mesh
    iv = put_replicated(interventions, mesh, np.float32)
    iscale = put_replicated(intervention_scale, mesh, np.float32)
    results: list[LogLikelihood | None] = [None] * len(items)
    for rows in length_batches([len(x[1]) for x in items], max_batch_tokens):
        batch = [items[r] for r in rows]
        t_len = bucket_length(len(batch[0][1]))
        b = bucket_batch(len(batch), mesh)
        inputs = np.full((b, t_len), PAD_ID, np.int32)
        targets = np.zeros((b, t_len), np.int32)
        for r, (_, inp, tgt, _) in enumerate(batch):
            inputs[r, : len(inp)] = inp
            targets[r, : len(tgt)] = tgt
        with mesh_scope(mesh):
            lp, greedy = _score(
                engine.graphdef,
                engine.params,
                put_batch(inputs, mesh),
                put_batch(targets, mesh),
                iv,
                iscale,
                chunk=SCORE_CHUNK,
            )
        lp, greedy = np.asarray(lp), np.asarray(greedy)
        for r, (i, inp, _, n_cont) in enumerate(batch):
            sl = slice(len(inp) - n_cont, len(inp))
            tok_lp = lp[r, sl].astype(np.float64)
            results[i] = LogLikelihood(
                float(tok_lp.sum()), bool(greedy[r, sl].all()), tok_lp.tolist()
            )
    return results


def rolling_windows(
    tokens: Sequence[int], prefix_token: int, max_length: int
) -> list[tuple[list[int], list[int]]]:
    """Disjoint (context, continuation) windows covering ``tokens`` (lm-eval's rolling
    windows with context_len=1): every token is a continuation token exactly once, the
    first window conditions on ``prefix_token``, later ones on the preceding tokens."""
    tokens = [int(t) for t in tokens]
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    windows = []
    if not tokens:
        return windows
    first = min(max_length, len(tokens))
    windows.append(([prefix_token], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        n_pred = min(len(tokens) - predicted, max_length)
        end = predicted + n_pred
        context = tokens[max(end - max_length - 1, 0) : end - 1]
        windows.append((context[: len(context) - (n_pred - 1)], tokens[end - n_pred : end]))
        predicted += n_pred
    return windows


def loglikelihood_rolling(
    model,
    documents: Sequence[Sequence[int]],
    *,
    prefix_token: int | None = None,
    max_length: int | None = None,
    max_batch_tokens: int = 8192,
    interventions=None,
    intervention_scale=None,
) -> list[RollingLogLikelihood]:
    """Whole-document log-likelihoods (sum over every token, each predicted once).

    ``prefix_token`` (default: the model's BOS) conditions the first token; documents
    should therefore not start with BOS themselves.
    """
    engine = as_engine(model)
    max_length = int(max_length or engine.cfg.max_seq_len)
    if prefix_token is None:
        prefix_token = tok_lib.bos_id(engine.tokenizer) if engine.tokenizer is not None else None
        prefix_token = engine.cfg.bos_token_id if prefix_token is None else prefix_token
    requests, owners = [], []
    for d, doc in enumerate(documents):
        for ctx, cont in rolling_windows(doc, prefix_token, max_length):
            requests.append((ctx, cont))
            owners.append(d)
    scored = loglikelihood(
        engine,
        requests,
        max_length=max_length,
        max_batch_tokens=max_batch_tokens,
        interventions=interventions,
        intervention_scale=intervention_scale,
    )
    per_doc: list[list[float]] = [[] for _ in documents]
    for d, res in zip(owners, scored):
        per_doc[d].extend(res.token_logprobs)
    return [RollingLogLikelihood(float(np.sum(lps)), len(lps), lps) for lps in per_doc]
