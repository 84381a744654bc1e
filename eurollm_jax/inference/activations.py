"""Activation capture and steering vectors, on the model's own inputs and outputs.

- ``capture_activations``: the residual stream after chosen layers (the model's
  ``hidden_states``, i.e. the output of decoder layer ``l`` including any intervention)
  for a batch of prompts, pooled as the last token, the mean over real tokens, or all
  positions. Used for steering vectors, classifier features and dense retrieval.
- ``steering_interventions``: per-layer vectors -> the model's ``interventions`` array
  [L, D]: eps * v added to the residual stream after layer l at every position, during
  prefill and decode (pass it to ``generate`` / ``loglikelihood``).
- ``residual_norms``: the typical residual norm per layer, to scale eps relative to it
  (norms grow with depth).

Layers are 0-based decoder-layer indices; negative indices count from the end.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

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
    put_replicated,
)
from eurollm_jax.inference.engine import as_engine

POOLINGS = ("last", "mean", "all")


@functools.partial(jax.jit, static_argnames=("graphdef", "layers", "pooling"))
def _capture(
    graphdef,
    params,
    tokens_BT,
    segments_BT,
    interventions,
    intervention_scale,
    *,
    layers: tuple[int, ...],
    pooling: str,
):
    model = nnx.merge(graphdef, params)
    # Rows are right-padded single prompts: causality alone keeps the pads out of every
    # real token's view, so the model gets no segment ids (fused kernels need no mask);
    # ``segments_BT`` marks the real tokens for pooling.
    out = model.forward(
        tokens_BT,
        capture_hidden=True,
        logits="none",
        interventions=interventions,
        intervention_scale=intervention_scale,
    )
    hidden_LBTD = out.hidden_states[jnp.asarray(layers)].astype(jnp.float32)
    hidden_BLTD = jnp.transpose(hidden_LBTD, (1, 0, 2, 3))
    mask_BT = segments_BT > 0
    if pooling == "all":
        return hidden_BLTD
    if pooling == "last":
        last_B = jnp.sum(mask_BT, axis=1) - 1
        return jnp.take_along_axis(hidden_BLTD, last_B[:, None, None, None], axis=2)[:, :, 0]
    weights_BT = mask_BT.astype(jnp.float32) / jnp.maximum(
        jnp.sum(mask_BT, axis=1, keepdims=True), 1
    )
    return jnp.einsum("bltd,bt->bld", hidden_BLTD, weights_BT)


def _layers(cfg, layers) -> tuple[int, ...]:
    if isinstance(layers, int):
        layers = [layers]
    out = []
    for layer in layers:
        idx = int(layer) + (cfg.num_layers if int(layer) < 0 else 0)
        if not 0 <= idx < cfg.num_layers:
            raise ValueError(f"layer {layer} is out of range for a {cfg.num_layers}-layer model")
        out.append(idx)
    if not out:
        raise ValueError("give at least one layer to capture")
    return tuple(out)


def capture_activations(
    model,
    prompts,
    layers: Sequence[int] | int,
    *,
    pooling: str = "last",
    tokenizer=None,
    add_bos: bool = True,
    max_batch_tokens: int = 8192,
    interventions=None,
    intervention_scale=None,
):
    """Residual-stream activations after ``layers`` for each prompt.

    Args:
      model: a ``Transformer`` or an ``Engine``.
      prompts: token-id lists, or strings with a tokenizer (one leading BOS by default).
      layers: decoder-layer indices (0-based; -1 = last layer).
      pooling: "last" (the last real token), "mean" (mean over the prompt's tokens) or
        "all" (every position).

    Returns:
      float32 numpy: [N, len(layers), D] for "last"/"mean"; for "all" a list of
      [len(layers), T_i, D] arrays (one per prompt, its own length).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    engine = as_engine(model, tokenizer)
    idx = _layers(engine.cfg, layers)
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of prompts (strings or token-id lists)")
    ids = [engine.encode(p, add_bos=add_bos) for p in prompts]
    for i, p in enumerate(ids):
        if not p:
            raise ValueError(f"prompt {i} is empty")
        if len(p) > engine.cfg.max_seq_len:
            raise ValueError(
                f"prompt {i} has {len(p)} tokens > max_seq_len {engine.cfg.max_seq_len}"
            )
    mesh = engine.mesh
    iv = put_replicated(interventions, mesh, np.float32)
    iscale = put_replicated(intervention_scale, mesh, np.float32)
    results: list = [None] * len(ids)
    for chunk in length_batches([len(p) for p in ids], max_batch_tokens):
        t_len = bucket_length(len(ids[chunk[0]]))
        b = bucket_batch(len(chunk), mesh)
        tokens = np.full((b, t_len), PAD_ID, np.int32)
        segments = np.zeros((b, t_len), np.int32)
        segments[len(chunk) :, 0] = 1  # padding rows: one dummy token keeps pooling finite
        for r, i in enumerate(chunk):
            tokens[r, : len(ids[i])] = ids[i]
            segments[r, : len(ids[i])] = 1
        with mesh_scope(mesh):
            out = _capture(
                engine.graphdef,
                engine.params,
                put_batch(tokens, mesh),
                put_batch(segments, mesh),
                iv,
                iscale,
                layers=idx,
                pooling=pooling,
            )
        out = np.asarray(out)
        for r, i in enumerate(chunk):
            results[i] = out[r, :, : len(ids[i])] if pooling == "all" else out[r]
    if pooling == "all":
        return results
    return np.stack(results) if results else np.zeros((0, len(idx), engine.cfg.d_model), np.float32)


def residual_norms(model, prompts, layers: Sequence[int] | int, **kwargs) -> np.ndarray:
    """Mean L2 norm of the residual stream after each of ``layers`` over all real tokens
    of ``prompts``: [len(layers)]. Use it to set eps relative to the layer's scale."""
    per_prompt = capture_activations(model, prompts, layers, pooling="all", **kwargs)
    norms = np.concatenate(
        [np.linalg.norm(a, axis=-1) for a in per_prompt], axis=1
    )  # [layers, tokens]
    return norms.mean(axis=1)


def steering_interventions(
    cfg,
    vectors: Mapping[int, np.ndarray],
    eps: float | Mapping[int, float] = 1.0,
    *,
    normalize: bool = False,
    reference_norms: Mapping[int, float] | None = None,
) -> np.ndarray:
    """The model's ``interventions`` [L, D] adding eps * v after each given layer.

    Args:
      cfg: the ``ModelConfig`` (layer count and width).
      vectors: {layer: vector [D]} (negative layers count from the end).
      eps: one coefficient for all layers or {layer: coefficient}.
      normalize: scale each vector to unit norm first.
      reference_norms: {layer: typical residual norm} (``residual_norms``); when given,
        the added vector is eps * norm * v (eps relative to the layer's scale).
    """
    out = np.zeros((cfg.num_layers, cfg.d_model), np.float32)
    for layer, vec in vectors.items():
        (idx,) = _layers(cfg, [layer])
        v = np.asarray(vec, np.float32).reshape(-1)
        if v.shape[0] != cfg.d_model:
            raise ValueError(
                f"steering vector for layer {layer} has size {v.shape[0]}, d_model is {cfg.d_model}"
            )
        if normalize:
            n = float(np.linalg.norm(v))
            if n == 0:
                raise ValueError(f"steering vector for layer {layer} is zero; cannot normalise it")
            v = v / n
        coef = float(eps[layer] if isinstance(eps, Mapping) else eps)
        if reference_norms is not None:
            coef *= float(reference_norms[layer])
        out[idx] += coef * v
    return out
