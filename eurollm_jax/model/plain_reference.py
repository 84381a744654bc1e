"""A plain JAX Llama: the performance yardstick for the model, not a second model.

``plain_loss(params, tokens, cfg)`` is the next-token cross-entropy of the EuroLLM
architecture written the shortest way JAX allows: a pure function over the *same*
parameter tree as ``Transformer`` (``nnx.to_pure_dict`` of its params), a ``lax.scan``
over the stacked layers, a dense causal mask, einsum attention, no sharding
constraints, no segment ids, no KV cache, no interventions, no kernel selection.

It exists so that the benchmarks (``launch.bench forward --peer=plain``,
``launch.bench train_step --peer=plain``) can say how much our model's generality costs
on top of what XLA does with the same arithmetic, in the same process: a ratio of 1.0
means none. ``tests/model/test_plain_reference.py`` checks that it computes the same
loss and gradients as the model, so the yardstick measures the same work.

Only unpacked rows, RoPE without scaling and untied or tied embeddings are supported;
anything else raises (the yardstick does not pretend to cover what it does not).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from eurollm_jax.model.config import ModelConfig


def _rms_norm(x, scale, eps):
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (x32 * scale.astype(jnp.float32)).astype(x.dtype)


def _rope(x, cos, sin):
    half = x.shape[-1] // 2
    x32 = x.astype(jnp.float32)
    rotated = jnp.concatenate([-x32[..., half:], x32[..., :half]], axis=-1)
    return (x32 * cos + rotated * sin).astype(x.dtype)


def plain_logits(params: dict, tokens_BT, cfg: ModelConfig):
    """Logits [B, T, V] in fp32 for unpacked rows (positions 0..T-1)."""
    if cfg.rope_scaling != "none":
        raise ValueError("the plain reference implements RoPE without scaling only")
    dt = jnp.dtype(cfg.dtype)
    b, t = tokens_BT.shape
    h, kv, dh = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    groups = h // kv
    inv_freq = 1.0 / (cfg.rope_theta ** (jnp.arange(0, dh, 2, dtype=jnp.float32) / dh))
    freqs = jnp.arange(t, dtype=jnp.float32)[:, None] * inv_freq[None, :]
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    cos, sin = jnp.cos(emb)[None, :, None, :], jnp.sin(emb)[None, :, None, :]
    causal = jnp.tril(jnp.ones((t, t), bool))

    x = params["embed_tokens"].astype(dt)[tokens_BT]

    def layer(x, p):
        a = p["self_attn"]
        y = _rms_norm(x, p["input_layernorm"]["scale"], cfg.norm_eps)
        q = _rope(jnp.einsum("btd,dhk->bthk", y, a["q_proj"].astype(dt)), cos, sin)
        k = _rope(jnp.einsum("btd,dhk->bthk", y, a["k_proj"].astype(dt)), cos, sin)
        v = jnp.einsum("btd,dhk->bthk", y, a["v_proj"].astype(dt))
        q = q.reshape(b, t, kv, groups, dh)
        scores = jnp.einsum("btkgd,bskd->bkgts", q, k, preferred_element_type=jnp.float32)
        scores = jnp.where(causal, scores / math.sqrt(dh), -1e30)
        probs = jax.nn.softmax(scores, axis=-1).astype(dt)
        out = jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, h, dh)
        x = x + jnp.einsum("bthk,hkd->btd", out, a["o_proj"].astype(dt))
        m = p["mlp"]
        y = _rms_norm(x, p["post_attention_layernorm"]["scale"], cfg.norm_eps)
        gate = jnp.einsum("btd,df->btf", y, m["gate_proj"].astype(dt))
        up = jnp.einsum("btd,df->btf", y, m["up_proj"].astype(dt))
        x = x + jnp.einsum("btf,fd->btd", jax.nn.silu(gate) * up, m["down_proj"].astype(dt))
        return x, None

    x, _ = jax.lax.scan(layer, x, params["layers"])
    x = _rms_norm(x, params["norm"]["scale"], cfg.norm_eps)
    head = params["embed_tokens"].T if cfg.tie_embeddings else params["lm_head"]
    return jnp.einsum("btd,dv->btv", x, head.astype(dt), preferred_element_type=jnp.float32)


def plain_loss(params: dict, tokens_BT1, cfg: ModelConfig):
    """Mean next-token cross-entropy over ``tokens[:, :-1] -> tokens[:, 1:]``."""
    logits = plain_logits(params, tokens_BT1[:, :-1], cfg)
    target = jnp.take_along_axis(logits, tokens_BT1[:, 1:, None], axis=-1)[..., 0]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - target)
