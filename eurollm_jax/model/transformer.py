"""The EuroLLM (Llama architecture) decoder in Flax NNX, written once for every use.

Shapes use suffixes: B batch, T new tokens, S key/value slots, D d_model, H query heads,
K kv heads, Dh head_dim, F ffn_dim, V vocab, L layers.

Layer parameters are *stacked* along a leading ``layers`` axis, whether the forward pass
scans over them (``scan_layers=True``) or loops in Python, so checkpoints do not depend
on that choice. Every parameter carries ``logical_axes`` metadata, resolved against the
mesh by ``eurollm_jax.parallel`` rules; model code never names a mesh axis.

Inputs beyond token ids, all optional and free when unused:
- ``segment_ids`` / ``positions`` for packed rows (no attention across documents, RoPE
  restarting per document);
- ``interventions`` [L, D] or [L, B, D] with ``intervention_scale`` [L], added to the
  residual stream after each layer (activation steering);
- a KV ``cache`` (see ``init_cache``) with ``cache_index`` for incremental decoding.
Optional outputs: the residual stream after every layer (``capture_hidden=True``).
"""

from __future__ import annotations

import math

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax import struct
from jax.ad_checkpoint import checkpoint_name

from eurollm_jax.model.attention import (
    AttentionMask,
    attention,
    current_platform,
    needs_dense_mask,
    select_kernel,
)
from eurollm_jax.model.config import ModelConfig
from eurollm_jax.model.context_parallel import load_balance_permutation, sequence_shards
from eurollm_jax.parallel.rules import constrain, current_mesh

_REMAT = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "dots_all": jax.checkpoint_policies.dots_saveable,
    "qkv_proj": jax.checkpoint_policies.save_only_these_names("query", "key", "value", "attn_out"),
}


def _stacked_param(rngs, init, shape, axes, dtype, stack: int | None):
    if stack is not None:
        shape = (stack, *shape)
        axes = ("layers", *axes)
    return nnx.Param(init(rngs.params(), shape, dtype), logical_axes=tuple(axes))


def dense(x, kernel, *, contract: int = 1, preferred_element_type=None):
    """``x`` [..., *in] @ ``kernel`` [*in, *out] over the last ``contract`` dims of ``x``.

    Written as one 2-D matmul ([rows, in] x [in, out], reshapes are free bitcasts) rather
    than an einsum over the 3-D activation: the einsum's transpose rule contracts the
    weight gradient over two dims (batch and time), for which XLA:CPU materialises
    transposed copies of the activations and picks a slower dot; the 2-D form's gradients
    are plain [in, rows] x [rows, out] dots. Same arithmetic on every backend.
    """
    lead = x.shape[: x.ndim - contract]
    k_in = kernel.shape[:contract]
    if tuple(x.shape[x.ndim - contract :]) != tuple(k_in):
        raise ValueError(f"dense: x {x.shape} does not end in the kernel's input dims {k_in}")
    out_dims = kernel.shape[contract:]
    y = jnp.dot(
        x.reshape(math.prod(lead), math.prod(k_in)),
        kernel.reshape(math.prod(k_in), math.prod(out_dims)),
        preferred_element_type=preferred_element_type,
    )
    return y.reshape(*lead, *out_dims)


# ----------------------------------------------------------------------------- blocks
class RMSNorm(nnx.Module):
    """x / rms(x) * scale, computed in fp32 and cast back to the input dtype."""

    def __init__(self, dim: int, eps: float, dtype, *, rngs: nnx.Rngs, stack: int | None = None):
        self.eps = eps
        self.scale = _stacked_param(rngs, lambda k, s, d: jnp.ones(s, d), (dim,), ("norm",), dtype, stack)

    def __call__(self, x_BTD):
        x = x_BTD.astype(jnp.float32)
        x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
        return (x * self.scale[...].astype(jnp.float32)).astype(x_BTD.dtype)


def rope_inv_freq(cfg: ModelConfig, positions_BT=None):
    """RoPE inverse frequencies [Dh/2] in fp32 with ``cfg.rope_scaling`` applied (the
    formulas of transformers' ``ROPE_INIT_FUNCTIONS``). "dynamic" depends on the longest
    position of the call, so it needs ``positions_BT``."""
    dh = cfg.head_dim
    exponents = jnp.arange(0, dh, 2, dtype=jnp.float32) / dh
    inv_freq = 1.0 / (cfg.rope_theta ** exponents)
    kind, factor = cfg.rope_scaling, cfg.rope_scaling_factor
    if kind == "linear":
        return inv_freq / factor
    if kind == "dynamic":
        original = float(cfg.rope_original_max_seq_len)
        seq_len = jnp.maximum(jnp.max(positions_BT).astype(jnp.float32) + 1.0, original)
        base = cfg.rope_theta * ((factor * seq_len / original) - (factor - 1.0)) ** (dh / (dh - 2))
        return 1.0 / (base ** exponents)
    if kind == "llama3":
        original = float(cfg.rope_original_max_seq_len)
        low_wavelen = original / cfg.rope_low_freq_factor
        high_wavelen = original / cfg.rope_high_freq_factor
        wavelen = 2.0 * math.pi / inv_freq
        scaled = jnp.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (original / wavelen - cfg.rope_low_freq_factor) / (
            cfg.rope_high_freq_factor - cfg.rope_low_freq_factor)
        smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return jnp.where(medium, smoothed, scaled)
    return inv_freq


def rope_tables(positions_BT, cfg: ModelConfig):
    """cos/sin [B, T, Dh] in fp32, HF ``rotate_half`` layout (halves, not interleaved)."""
    freqs = positions_BT.astype(jnp.float32)[..., None] * rope_inv_freq(cfg, positions_BT)
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x_BTHD, cos_BTD, sin_BTD):
    half = x_BTHD.shape[-1] // 2
    x = x_BTHD.astype(jnp.float32)
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    out = x * cos_BTD[:, :, None, :] + rotated * sin_BTD[:, :, None, :]
    return out.astype(x_BTHD.dtype)


class Attention(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, stack: int | None = None):
        self.cfg = cfg
        init = nnx.initializers.normal(cfg.initializer_range)
        d, h, k, hd = cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        pd = cfg.weight_dtype
        self.q_proj = _stacked_param(rngs, init, (d, h, hd), ("embed", "q_heads", "head_dim"), pd, stack)
        self.k_proj = _stacked_param(rngs, init, (d, k, hd), ("embed", "kv_heads", "head_dim"), pd, stack)
        self.v_proj = _stacked_param(rngs, init, (d, k, hd), ("embed", "kv_heads", "head_dim"), pd, stack)
        self.o_proj = _stacked_param(rngs, init, (h, hd, d), ("q_heads", "head_dim", "embed"), pd, stack)

    def __call__(self, x_BTD, cos, sin, mask: AttentionMask, kv_cache=None, cache_index=None,
                 layer_index=None):
        """``kv_cache``: the whole cache {"k", "v": [L, B, K, S, Dh]}; only this layer's new
        slots are written (in place under jit), and the updated cache is returned."""
        cfg = self.cfg
        dt = cfg.dtype
        q = dense(x_BTD, self.q_proj[...].astype(dt))
        k = dense(x_BTD, self.k_proj[...].astype(dt))
        v = dense(x_BTD, self.v_proj[...].astype(dt))
        q = constrain(q, ("act_batch", "act_seq", "act_heads", "act_head_dim"))
        k = constrain(k, ("act_batch", "act_seq", "act_kv_heads", "act_head_dim"))
        v = constrain(v, ("act_batch", "act_seq", "act_kv_heads", "act_head_dim"))
        q = checkpoint_name(apply_rope(q, cos, sin), "query")
        k = checkpoint_name(apply_rope(k, cos, sin), "key")
        v = checkpoint_name(v, "value")
        if kv_cache is None:
            new_cache = None
            out = attention(q, k, v, mask, impl=cfg.attention_impl, is_self_attention=True,
                            context_parallel=cfg.context_parallel)
        else:
            # The cache keeps heads before slots ([B, K, S, Dh] per layer): attention reads
            # it as it lies, with no per-step transposed copy of the whole cache.
            start = (layer_index, 0, 0, cache_index, 0)
            ck = jax.lax.dynamic_update_slice(
                kv_cache["k"], k.astype(kv_cache["k"].dtype).transpose(0, 2, 1, 3)[None], start)
            cv = jax.lax.dynamic_update_slice(
                kv_cache["v"], v.astype(kv_cache["v"].dtype).transpose(0, 2, 1, 3)[None], start)
            new_cache = {"k": ck, "v": cv}
            k = jax.lax.dynamic_index_in_dim(ck, layer_index, axis=0, keepdims=False).astype(dt)
            v = jax.lax.dynamic_index_in_dim(cv, layer_index, axis=0, keepdims=False).astype(dt)
            out = attention(q, k, v, mask, impl=cfg.attention_impl, is_self_attention=False,
                            kv_layout="BKSD")
        out = checkpoint_name(out, "attn_out")
        out = constrain(out, ("act_batch", "act_seq", "act_heads", "act_head_dim"))
        y = dense(out, self.o_proj[...].astype(dt), contract=2)
        return y, new_cache


class MLP(nnx.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, stack: int | None = None):
        self.cfg = cfg
        init = nnx.initializers.normal(cfg.initializer_range)
        d, f, pd = cfg.d_model, cfg.ffn_dim, cfg.weight_dtype
        self.gate_proj = _stacked_param(rngs, init, (d, f), ("embed", "mlp"), pd, stack)
        self.up_proj = _stacked_param(rngs, init, (d, f), ("embed", "mlp"), pd, stack)
        self.down_proj = _stacked_param(rngs, init, (f, d), ("mlp", "embed"), pd, stack)

    def __call__(self, x_BTD):
        dt = self.cfg.dtype
        gate = dense(x_BTD, self.gate_proj[...].astype(dt))
        up = dense(x_BTD, self.up_proj[...].astype(dt))
        h = constrain(jax.nn.silu(gate) * up, ("act_batch", "act_seq", "act_mlp"))
        return dense(h, self.down_proj[...].astype(dt))


class DecoderLayer(nnx.Module):
    """Pre-norm block: x + attn(norm(x)), then + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, stack: int | None = None):
        pd = cfg.weight_dtype
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps, pd, rngs=rngs, stack=stack)
        self.self_attn = Attention(cfg, rngs=rngs, stack=stack)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps, pd, rngs=rngs, stack=stack)
        self.mlp = MLP(cfg, rngs=rngs, stack=stack)

    def __call__(self, x_BTD, cos, sin, mask, kv_cache=None, cache_index=None, layer_index=None):
        h, new_cache = self.self_attn(
            self.input_layernorm(x_BTD), cos, sin, mask, kv_cache, cache_index, layer_index
        )
        x_BTD = constrain(x_BTD + h, ("act_batch", "act_seq", "act_embed"))
        x_BTD = x_BTD + self.mlp(self.post_attention_layernorm(x_BTD))
        return constrain(x_BTD, ("act_batch", "act_seq", "act_embed")), new_cache


# ----------------------------------------------------------------------------- model
@struct.dataclass
class ModelOutput:
    """logits [B, T, V] (or [B, 1, V] with logits="last"; None with logits="none");
    final_hidden [B, T, D] after the final norm; hidden_states [L, B, T, D] residual
    stream after each layer (with capture_hidden); cache: the updated KV cache."""

    logits: jax.Array | None
    final_hidden: jax.Array | None = None
    hidden_states: jax.Array | None = None
    cache: Any = None


class Transformer(nnx.Module):
    """EuroLLM decoder. ``model(input_ids) -> logits [B, T, V]`` in fp32."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        pd = cfg.weight_dtype
        init = nnx.initializers.normal(cfg.initializer_range)
        self.embed_tokens = nnx.Param(
            init(rngs.params(), (cfg.vocab_size, cfg.d_model), pd), logical_axes=("vocab", "embed")
        )
        self.layers = DecoderLayer(cfg, rngs=rngs, stack=cfg.num_layers)
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps, pd, rngs=rngs)
        if not cfg.tie_embeddings:
            self.lm_head = nnx.Param(
                init(rngs.params(), (cfg.d_model, cfg.vocab_size), pd), logical_axes=("embed", "vocab")
            )

    # -------------------------------------------------------------- KV cache
    def init_cache(self, batch_size: int, max_len: int, dtype=None):
        """An empty KV cache for ``max_len`` slots: k/v [L, B, K, S, Dh], plus per-slot
        segment ids (0 = empty). Sharded like activations when a mesh is set."""
        cfg = self.cfg
        dtype = dtype or cfg.dtype
        shape = (cfg.num_layers, batch_size, cfg.num_kv_heads, max_len, cfg.head_dim)
        axes = ("layers", "act_batch", "act_kv_heads", "cache_seq", "act_head_dim")
        return {
            "k": constrain(jnp.zeros(shape, dtype), axes),
            "v": constrain(jnp.zeros(shape, dtype), axes),
            "segment_ids": constrain(jnp.zeros((batch_size, max_len), jnp.int32), ("act_batch", "cache_seq")),
        }

    def lm_head_kernel(self):
        """The [D, V] output projection in the compute dtype (the embedding when tied)."""
        if self.cfg.tie_embeddings:
            return self.embed_tokens[...].astype(self.cfg.dtype).T
        return self.lm_head[...].astype(self.cfg.dtype)

    # -------------------------------------------------------------- forward
    def __call__(self, input_ids, **kwargs):
        return self.forward(input_ids, **kwargs).logits

    def forward(
        self,
        input_ids_BT,
        *,
        segment_ids=None,
        positions=None,
        interventions=None,
        intervention_scale=None,
        cache=None,
        cache_index=None,
        capture_hidden: bool = False,
        logits: str = "all",
    ) -> ModelOutput:
        cfg = self.cfg
        dt = cfg.dtype
        b, t = input_ids_BT.shape
        if positions is None:
            if segment_ids is not None and cache is None:
                positions = positions_from_segments(segment_ids)
            else:
                start = 0 if cache_index is None else cache_index
                positions = jnp.broadcast_to(start + jnp.arange(t, dtype=jnp.int32), (b, t))
        q_slots = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
        new_cache = None
        if cache is None:
            # Unpacked rows carry no segments: causality alone, so fused kernels need no mask.
            mask = AttentionMask(q_slots, q_slots, segment_ids, segment_ids)
        else:
            if cache_index is None:
                raise ValueError("a KV cache needs cache_index: the slot of the first new token")
            if segment_ids is None:
                segment_ids = jnp.ones((b, t), jnp.int32)
            s = cache["k"].shape[3]
            kv_segments = jax.lax.dynamic_update_slice_in_dim(
                cache["segment_ids"], segment_ids.astype(jnp.int32), cache_index, axis=1
            )
            kv_slots = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (b, s))
            mask = AttentionMask(q_slots + cache_index, kv_slots, segment_ids, kv_segments)
            new_cache = {"segment_ids": kv_segments}
        shards = sequence_shards(current_mesh()) if cache is None else 1
        kernel, _ = select_kernel(
            cfg.attention_impl, current_platform(), dt, t, has_cache=cache is not None,
            packed=mask.packed, head_dim=cfg.head_dim, sequence_shards=shards,
            context_parallel=cfg.context_parallel,
        )
        if needs_dense_mask(kernel, mask.packed):
            mask = mask.with_dense()  # built once, not once per layer
        restore = None
        if shards > 1:
            if t % shards:
                raise ValueError(f"rows of {t} tokens cannot split over the mesh's sequence "
                                 f"axis of {shards}: make the row length a multiple of it")
            if cfg.context_load_balance:
                # Zigzag order: every sequence shard gets an early and a late chunk. The
                # mask keeps the original slots, so causality is unchanged; per-token ops
                # do not care about order; the final hidden states are put back.
                order = load_balance_permutation(t, shards)
                restore = np.argsort(order)
                input_ids_BT, positions = input_ids_BT[:, order], positions[:, order]
                mask = AttentionMask(
                    mask.q_slots[:, order], mask.kv_slots[:, order],
                    None if mask.q_segments is None else mask.q_segments[:, order],
                    None if mask.kv_segments is None else mask.kv_segments[:, order])

        x = self.embed_tokens[...].astype(dt)[input_ids_BT]
        x = constrain(x, ("act_batch", "act_seq", "act_embed"))
        cos, sin = rope_tables(positions, cfg)

        if interventions is not None:
            interventions = jnp.asarray(interventions)
            if interventions.shape[0] != cfg.num_layers or interventions.shape[-1] != cfg.d_model:
                raise ValueError(
                    f"interventions must be [layers={cfg.num_layers}, d_model={cfg.d_model}] or "
                    f"[layers, batch, d_model], got {interventions.shape}"
                )
            if interventions.ndim == 2:
                interventions = interventions[:, None, :]
            scale = (
                jnp.ones((cfg.num_layers,), jnp.float32)
                if intervention_scale is None
                else jnp.asarray(intervention_scale, jnp.float32).reshape(cfg.num_layers)
            )
            interventions = interventions.astype(jnp.float32) * scale[:, None, None]

        layer_graph, layer_state = nnx.split(self.layers)
        kv_cache = None if cache is None else {"k": cache["k"], "v": cache["v"]}

        # The KV cache rides in the scan carry, so each layer writes only its new slots in
        # place instead of the scan re-stacking the whole cache every decode step.
        def body(carry, xs):
            x, kv = carry
            state_l, index_l, delta_l = xs
            layer = nnx.merge(layer_graph, state_l)
            y, kv = layer(x, cos, sin, mask, kv, cache_index, index_l)
            if delta_l is not None:
                y = (y.astype(jnp.float32) + delta_l[:, None, :]).astype(y.dtype)
            return (y, kv), (y if capture_hidden else None)

        policy = _REMAT[cfg.remat_policy]
        if cfg.remat_policy != "none":
            body = jax.checkpoint(body, policy=policy, prevent_cse=not cfg.scan_layers)

        layer_indices = jnp.arange(cfg.num_layers, dtype=jnp.int32)
        if cfg.scan_layers:
            xs = (layer_state, layer_indices, interventions)
            (x, kv_cache), hidden = jax.lax.scan(body, (x, kv_cache), xs)
        else:
            hidden_list = []
            for i in range(cfg.num_layers):
                xs_i = (jax.tree.map(lambda a: a[i], layer_state), i,
                        None if interventions is None else interventions[i])
                (x, kv_cache), h = body((x, kv_cache), xs_i)
                hidden_list.append(h)
            hidden = jnp.stack(hidden_list) if capture_hidden else None
        if new_cache is not None:
            new_cache.update(kv_cache)
        if restore is not None:
            x = constrain(x[:, restore], ("act_batch", "act_seq", "act_embed"))
            if hidden is not None:
                hidden = hidden[:, :, restore]
        x = self.norm(x)
        if logits == "none":
            out_logits = None
        else:
            h = x[:, -1:, :] if logits == "last" else x
            out_logits = dense(h, self.lm_head_kernel(), preferred_element_type=jnp.float32)
            out_logits = constrain(out_logits, ("act_batch", "act_seq", "act_vocab"))
        return ModelOutput(logits=out_logits, final_hidden=x, hidden_states=hidden, cache=new_cache)


def positions_from_segments(segment_ids_BT):
    """RoPE positions that restart at 0 at each new segment of a packed row."""
    b, t = segment_ids_BT.shape
    idx = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    starts = jnp.concatenate(
        [jnp.ones((b, 1), bool), segment_ids_BT[:, 1:] != segment_ids_BT[:, :-1]], axis=1
    )
    start_idx = jax.lax.cummax(jnp.where(starts, idx, 0), axis=1)
    return idx - start_idx
