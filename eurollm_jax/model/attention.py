"""Attention kernels behind one interface, chosen by ``ModelConfig.attention_impl``.

Every implementation takes q [B, T, H, Dh], k/v [B, S, K, Dh] (K divides H: grouped-query
attention) and a ``AttentionMask`` describing causality by *slot index* plus segment
equality (packed documents never attend to each other; padding has its own segment).
Softmax runs in fp32 whatever the compute dtype.

- ``xla``: einsum reference; works everywhere, supports a KV cache (S != T).
- ``cudnn``: ``jax.nn.dot_product_attention(implementation="cudnn")``, NVIDIA GPUs.
- ``splash``: Pallas splash attention (TPU), wrapped in ``shard_map`` over the mesh.
  Imported lazily so that CPU/GPU installs never touch the TPU kernels. Requires the
  sequence length to be a multiple of 128 and no KV cache (decode uses ``xla``).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

# Large finite negative number: fully masked rows stay finite (no NaN in softmax).
MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)


@dataclasses.dataclass(frozen=True)
class AttentionMask:
    """What may attend to what.

    q_slots [B, T] / kv_slots [B, S]: monotone slot indices (position in the row or in
    the cache); causal means kv_slot <= q_slot. q_segments / kv_segments: segment ids,
    attention only within equal ids (empty cache slots have segment 0, which no real
    token uses).
    """

    q_slots: jax.Array
    kv_slots: jax.Array
    q_segments: jax.Array | None = None
    kv_segments: jax.Array | None = None
    precomputed: jax.Array | None = None

    def with_dense(self) -> "AttentionMask":
        """The same mask with its dense form computed once (reused by every layer)."""
        return dataclasses.replace(self, precomputed=self.dense())

    def dense(self) -> jax.Array:
        """Boolean [B, 1, T, S] mask."""
        if self.precomputed is not None:
            return self.precomputed
        mask = self.kv_slots[:, None, :] <= self.q_slots[:, :, None]
        if self.q_segments is not None:
            mask &= self.q_segments[:, :, None] == self.kv_segments[:, None, :]
        return mask[:, None, :, :]


def resolve_impl(impl: str) -> str:
    if impl != "auto":
        return impl
    platform = jax.devices()[0].platform
    return {"gpu": "cudnn", "cuda": "cudnn", "tpu": "splash"}.get(platform, "xla")


def attention(q, k, v, mask: AttentionMask, *, impl: str = "xla", is_self_attention: bool = True):
    """Dispatch to the configured kernel. Kernels other than xla need self-attention."""
    impl = resolve_impl(impl)
    if impl == "xla" or not is_self_attention:
        return xla_attention(q, k, v, mask)
    if impl == "cudnn":
        return cudnn_attention(q, k, v, mask)
    if impl == "splash":
        return splash_attention(q, k, v, mask)
    raise ValueError(f"unknown attention implementation {impl!r}")


def xla_attention(q, k, v, mask: AttentionMask):
    b, t, h, d = q.shape
    s, kv_heads = k.shape[1], k.shape[2]
    groups = h // kv_heads
    # Query heads sharing a KV head are folded into the row dimension: one plain batched
    # matmul per KV head ([G*T, Dh] x [Dh, S]), which XLA lowers best on every backend.
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(b, kv_heads, groups * t, d)
    scores = jnp.einsum("bkqd,bskd->bkqs", q, k, preferred_element_type=jnp.float32)
    scores = scores.reshape(b, kv_heads, groups, t, s) * (1.0 / math.sqrt(d))
    dense = mask.dense()[:, :, None]  # [B, 1, 1, T, S]
    scores = jnp.where(dense, scores, MASK_VALUE)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype).reshape(b, kv_heads, groups * t, s)
    out = jnp.einsum("bkqs,bskd->bkqd", probs, v)
    return out.reshape(b, kv_heads, groups, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, h, d)


def cudnn_attention(q, k, v, mask: AttentionMask, *, implementation: str | None = "cudnn"):
    """Fused attention. Causal masking by the kernel; segments (packing) as a dense mask."""
    dense = None
    if mask.q_segments is not None:
        dense = mask.dense()
    return jax.nn.dot_product_attention(
        q, k, v, mask=dense, is_causal=True, implementation=implementation
    )


@functools.lru_cache(maxsize=32)
def _splash_kernel(seq_len: int, num_q_per_kv: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import (  # TPU only
        splash_attention_kernel as sk,
        splash_attention_mask as sm,
    )

    block = min(512, seq_len)
    sizes = sk.BlockSizes(
        block_q=block, block_kv_compute=block, block_kv=block,
        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
        block_q_dq=block, block_kv_dq=block,
    )
    mask = sm.MultiHeadMask([sm.CausalMask((seq_len, seq_len)) for _ in range(num_q_per_kv)])
    return sk.make_splash_mqa_single_device(mask, block_sizes=sizes, interpret=interpret)


def splash_attention(q, k, v, mask: AttentionMask, *, interpret: bool = False):
    """Pallas splash attention; q [B, T, H, D], k/v [B, T, K, D]; causal + segments."""
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk

    b, t, h, d = q.shape
    kv_heads = k.shape[2]
    if t % 128:
        raise ValueError(f"splash attention needs a sequence length multiple of 128, got {t}")
    groups = h // kv_heads
    segments = mask.q_segments if mask.q_segments is not None else jnp.zeros((b, t), jnp.int32)

    def local(q, k, v, segments):
        kernel = _splash_kernel(q.shape[1], groups, interpret)
        lb, lt, lh, _ = q.shape
        lk = k.shape[2]
        qg = (q * (1.0 / math.sqrt(d))).reshape(lb, lt, lk, groups, d).transpose(0, 2, 3, 1, 4)
        kt = k.transpose(0, 2, 1, 3)  # [B, K, T, D]
        vt = v.transpose(0, 2, 1, 3)

        def one(qh, kh, vh, seg):
            return kernel(qh, kh, vh, segment_ids=sk.SegmentIds(seg, seg))

        per_head = jax.vmap(one, in_axes=(0, 0, 0, None))  # over kv heads
        out = jax.vmap(per_head, in_axes=(0, 0, 0, 0))(qg, kt, vt, segments)  # over batch
        return out.transpose(0, 3, 1, 2, 4).reshape(lb, lt, lh, d)

    from eurollm_jax.parallel.rules import current_mesh, logical_to_spec

    mesh = current_mesh()
    if mesh is None:
        return local(q, k, v, segments)
    qspec = logical_to_spec(("act_batch", None, "act_heads", None), q.shape, mesh)
    kspec = logical_to_spec(("act_batch", None, "act_kv_heads", None), k.shape, mesh)
    if qspec[2] != kspec[2]:  # kv heads replicated: keep q heads whole too
        qspec = jax.sharding.PartitionSpec(qspec[0], None, None, None)
        kspec = jax.sharding.PartitionSpec(kspec[0], None, None, None)
    sspec = jax.sharding.PartitionSpec(qspec[0], None)
    return jax.shard_map(
        local, mesh=mesh, in_specs=(qspec, kspec, kspec, sspec), out_specs=qspec, check_vma=False
    )(q, k, v, segments)
