"""Attention kernels behind one interface, and the choice of kernel for each call.

Every implementation takes q [B, T, H, Dh], k/v [B, S, K, Dh] (K divides H: grouped-query
attention) and a ``AttentionMask`` describing causality by *slot index* plus, for packed
rows, segment equality (packed documents never attend to each other; padding has its own
segment). Softmax runs in fp32 whatever the compute dtype.

- ``xla``: einsum reference; works everywhere, supports a KV cache (S != T).
- ``cudnn``: ``jax.nn.dot_product_attention(implementation="cudnn")``, NVIDIA GPUs, bf16 or
  fp16. Unpacked rows pass no mask at all (``is_causal=True``: the kernel skips the masked
  half); packed rows pass the dense [B, 1, T, S] segment mask (jax's public API has no
  segment ids).
- ``splash``: Pallas splash attention (TPU), wrapped in ``shard_map`` over the mesh.
  Imported lazily so that CPU/GPU installs never touch the TPU kernels. Any length runs:
  rows are padded to a multiple of 128 (the padding gets a segment id of its own, so no
  real token sees it, and is sliced off again) and the block size is the largest of
  512/384/256/128 that divides the padded length.

``select_kernel`` is the whole choice (a pure function of the request: implementation,
platform, dtype, length, cache, packing, head_dim) and says why; ``attention`` applies it
and logs the kernel that ran, once per shape. Fallbacks to the reference kernel: a KV cache
(decode), cuDNN with fp32 (cuDNN needs bf16/fp16) or an unsupported head_dim, and splash
rows shorter than 128 tokens (one padded block would cost more than the reference).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import jax
import jax.numpy as jnp

from eurollm_jax.model.config import ATTENTION_IMPLS, canonical_dtype

logger = logging.getLogger(__name__)

# Large finite negative number: fully masked rows stay finite (no NaN in softmax).
MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)

SPLASH_LANE = 128  # splash block sizes are multiples of the TPU lane width
SPLASH_BLOCKS = (512, 384, 256, 128)  # tried largest first; each a multiple of 128
SPLASH_MIN_LEN = 128  # shorter rows run the reference kernel (see select_kernel)
CUDNN_DTYPES = ("bfloat16", "float16")
CUDNN_MAX_HEAD_DIM = 256  # 128 before Hopper; jax's cuDNN wrapper checks the device


@dataclasses.dataclass(frozen=True)
class AttentionMask:
    """What may attend to what.

    q_slots [B, T] / kv_slots [B, S]: monotone slot indices (position in the row or in
    the cache); causal means kv_slot <= q_slot. q_segments / kv_segments: segment ids,
    attention only within equal ids (empty cache slots have segment 0, which no real
    token uses); None for unpacked rows (causality alone).
    """

    q_slots: jax.Array
    kv_slots: jax.Array
    q_segments: jax.Array | None = None
    kv_segments: jax.Array | None = None
    precomputed: jax.Array | None = None

    @property
    def packed(self) -> bool:
        return self.q_segments is not None

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


# ----------------------------------------------------------------------------- selection
def current_platform() -> str:
    """The platform "auto" resolves against: that of the default backend's devices."""
    return jax.devices()[0].platform


def resolve_impl(impl: str, platform: str | None = None) -> str:
    """"auto" -> the platform's fused kernel (cudnn on GPU, splash on TPU, else xla)."""
    if impl != "auto":
        return impl
    platform = current_platform() if platform is None else platform
    return {"gpu": "cudnn", "cuda": "cudnn", "tpu": "splash"}.get(platform, "xla")


def splash_padded_length(seq_len: int) -> int:
    """The length splash runs at: ``seq_len`` rounded up to a multiple of 128."""
    return -(-int(seq_len) // SPLASH_LANE) * SPLASH_LANE


def splash_block_size(padded_len: int) -> int:
    """The largest of SPLASH_BLOCKS dividing ``padded_len`` (a multiple of 128)."""
    for block in SPLASH_BLOCKS:
        if padded_len % block == 0:
            return block
    raise ValueError(f"splash length {padded_len} is not a multiple of {SPLASH_LANE}")


def select_kernel(
    impl: str,
    platform: str,
    dtype,
    seq_len: int,
    *,
    has_cache: bool = False,
    packed: bool = False,
    head_dim: int | None = None,
    sequence_shards: int = 1,
    context_parallel: str = "ring",
) -> tuple[str, str]:
    """(kernel, reason): which kernel runs a call, and why.

    Args:
      impl: ``ModelConfig.attention_impl`` ("auto", "xla", "cudnn", "splash").
      platform: the device platform ("cpu", "gpu", "tpu"; see ``current_platform``).
      dtype: the compute dtype of q/k/v (anything ``canonical_dtype`` accepts).
      seq_len: query length T of the call.
      has_cache: keys/values come from a KV cache (decode) rather than the call itself.
      packed: rows carry segment ids (packed documents or padding segments).
      head_dim: per-head width, checked against cuDNN's limit when given.
      sequence_shards: the mesh's ``sequence`` axis; > 1 runs ``context_parallel``
        ("ring" or "allgather", ``eurollm_jax.model.context_parallel``) for self-attention.

    An explicit "splash" is honoured on any platform (ahead-of-time compilation for TPU
    runs on a CPU host); an explicit "cudnn" needs a GPU platform.
    """
    if impl not in ATTENTION_IMPLS:
        raise ValueError(
            f"unknown attention implementation {impl!r}; choose one of {ATTENTION_IMPLS}"
        )
    if has_cache:
        return "xla", "KV cache (decode): only the reference kernel reads a cache"
    if sequence_shards > 1:
        if context_parallel not in ("ring", "allgather"):
            raise ValueError(f"context_parallel must be 'ring' or 'allgather', got "
                             f"{context_parallel!r}")
        return context_parallel, (f"sequence axis of {sequence_shards}: context-parallel "
                                  f"{context_parallel} attention")
    if impl == "xla":
        return "xla", "attention_impl='xla'"
    want = resolve_impl(impl, platform)
    source = f"attention_impl={impl!r}" + (f" on {platform}" if impl == "auto" else "")
    if want == "xla":
        return "xla", f"{source}: no fused kernel for this platform"
    if want == "cudnn":
        if impl == "cudnn" and platform not in ("gpu", "cuda"):
            raise ValueError(
                f"attention_impl='cudnn' needs an NVIDIA GPU but the devices are {platform!r}; "
                f"use attention_impl='auto' (picks the platform's kernel) or 'xla'"
            )
        name = canonical_dtype(dtype)
        if name not in CUDNN_DTYPES:
            return "xla", (
                f"{source}: cuDNN flash attention needs bfloat16 or float16, compute dtype is "
                f"{name}; running the reference kernel (set compute_dtype='bfloat16' for cuDNN)"
            )
        if head_dim is not None and (head_dim % 8 or head_dim > CUDNN_MAX_HEAD_DIM):
            return "xla", (
                f"{source}: cuDNN needs head_dim a multiple of 8 and <= {CUDNN_MAX_HEAD_DIM}, "
                f"got {head_dim}; running the reference kernel"
            )
        how = "dense segment mask (packed rows)" if packed else "causal, no mask"
        return "cudnn", f"{source}: {how}"
    # splash
    if seq_len < SPLASH_MIN_LEN:
        return "xla", (
            f"{source}: row of {seq_len} < {SPLASH_MIN_LEN} tokens; the reference kernel is "
            f"cheaper than padding it to one splash block"
        )
    padded = splash_padded_length(seq_len)
    pad = f"padded {seq_len} -> {padded}, " if padded != seq_len else ""
    return "splash", f"{source}: {pad}block {splash_block_size(padded)}"


def needs_dense_mask(kernel: str, packed: bool) -> bool:
    """Whether ``kernel`` reads the dense [B, 1, T, S] mask (build it once per forward)."""
    return kernel == "xla" or (kernel == "cudnn" and packed)


_LOGGED: set = set()


def _log_choice(kernel: str, reason: str, impl: str, q, k) -> None:
    key = (kernel, reason, impl, tuple(q.shape), tuple(k.shape), str(q.dtype))
    if key in _LOGGED:
        return
    _LOGGED.add(key)
    # A kernel the user asked for by name but did not get is worth a warning.
    level = logging.WARNING if impl in ("cudnn", "splash") and kernel != impl else logging.INFO
    logger.log(level, "attention kernel %s for q%s k%s %s: %s",
               kernel, tuple(q.shape), tuple(k.shape), q.dtype, reason)


def attention(q, k, v, mask: AttentionMask, *, impl: str = "xla", is_self_attention: bool = True,
              context_parallel: str = "ring", kv_layout: str = "BSKD"):
    """Run the kernel ``select_kernel`` picks for this call (logged once per shape).
    ``kv_layout="BKSD"``: k/v are [B, K, S, Dh] (the KV cache's layout; reference kernel)."""
    if kv_layout not in ("BSKD", "BKSD"):
        raise ValueError(f"kv_layout must be 'BSKD' or 'BKSD', got {kv_layout!r}")
    if kv_layout == "BKSD" and is_self_attention:
        raise ValueError("kv_layout='BKSD' is the KV cache's layout (is_self_attention=False)")
    from eurollm_jax.model.context_parallel import context_parallel_attention, sequence_shards
    from eurollm_jax.parallel.rules import current_mesh

    mesh = current_mesh()
    kernel, reason = select_kernel(
        impl, current_platform(), q.dtype, q.shape[1], has_cache=not is_self_attention,
        packed=mask.packed, head_dim=q.shape[-1], sequence_shards=sequence_shards(mesh),
        context_parallel=context_parallel,
    )
    _log_choice(kernel, reason, impl, q, k)
    if kernel in ("ring", "allgather"):
        return context_parallel_attention(q, k, v, mask, mesh, impl=kernel)
    if kernel == "xla":  # the only kernel for a cache (select_kernel), so any layout
        return xla_attention(q, k, v, mask, kv_layout=kv_layout)
    if kernel == "cudnn":
        return cudnn_attention(q, k, v, mask)
    return splash_attention(q, k, v, mask)


# ----------------------------------------------------------------------------- kernels
def xla_attention(q, k, v, mask: AttentionMask, *, kv_layout: str = "BSKD"):
    """Einsum attention; k/v [B, S, K, Dh], or [B, K, S, Dh] with ``kv_layout="BKSD"``."""
    b, t, h, d = q.shape
    if kv_layout == "BKSD":
        kv_heads, s = k.shape[1], k.shape[2]
        k_spec = "bksd"
    else:
        s, kv_heads = k.shape[1], k.shape[2]
        k_spec = "bskd"
    groups = h // kv_heads
    # Query heads sharing a KV head are folded into the row dimension: one plain batched
    # matmul per KV head ([G*T, Dh] x [Dh, S]), which XLA lowers best on every backend.
    q = q.reshape(b, t, kv_heads, groups, d).transpose(0, 2, 3, 1, 4).reshape(b, kv_heads, groups * t, d)
    scores = jnp.einsum(f"bkqd,{k_spec}->bkqs", q, k, preferred_element_type=jnp.float32)
    scores = scores.reshape(b, kv_heads, groups, t, s) * (1.0 / math.sqrt(d))
    dense = mask.dense()[:, :, None]  # [B, 1, 1, T, S]
    scores = jnp.where(dense, scores, MASK_VALUE)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype).reshape(b, kv_heads, groups * t, s)
    out = jnp.einsum(f"bkqs,{k_spec}->bkqd", probs, v)
    return out.reshape(b, kv_heads, groups, t, d).transpose(0, 3, 1, 2, 4).reshape(b, t, h, d)


def cudnn_attention(q, k, v, mask: AttentionMask, *, implementation: str | None = "cudnn"):
    """Fused attention. Causal masking by the kernel; no mask array for unpacked rows,
    the dense segment mask for packed ones. ``implementation=None`` runs jax's own xla
    path with the same arguments (the wrapper's semantics, testable on CPU)."""
    dense = mask.dense() if mask.packed else None
    return jax.nn.dot_product_attention(
        q, k, v, mask=dense, is_causal=True, implementation=implementation
    )


def _splash_kernel(seq_len: int, num_q_per_kv: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu.splash_attention import (  # TPU only
        splash_attention_kernel as sk,
        splash_attention_mask as sm,
    )

    block = splash_block_size(seq_len)
    sizes = sk.BlockSizes(
        block_q=block, block_kv_compute=block, block_kv=block,
        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
        block_q_dq=block, block_kv_dq=block,
    )
    mask = sm.MultiHeadMask([sm.CausalMask((seq_len, seq_len)) for _ in range(num_q_per_kv)])
    # Built anew in every trace (not cached): the kernel holds its mask tables as arrays,
    # which inside a jit trace are that trace's values; a cached kernel would leak them into
    # the next trace (e.g. a grad after a forward), and evaluating them eagerly instead fails
    # when compiling ahead of time for a TPU topology from a CPU host (launch.compile_tpu).
    return sk.make_splash_mqa_single_device(mask, block_sizes=sizes, interpret=interpret)


def splash_attention(q, k, v, mask: AttentionMask, *, interpret: bool = False):
    """Pallas splash attention; q [B, T, H, D], k/v [B, T, K, D]; causal + segments.

    Any T: rows are padded at the end to a multiple of 128 with a segment id no real token
    has (so, with causality, real tokens never see the padding) and the output is sliced
    back to T. ``interpret=True`` runs the kernel in Pallas interpret mode (CPU tests).
    """
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk

    b, t, h, d = q.shape
    kv_heads = k.shape[2]
    if k.shape[1] != t:
        raise ValueError(f"splash attention is self-attention only: q has {t} rows, k {k.shape[1]}")
    groups = h // kv_heads
    segments = mask.q_segments if mask.q_segments is not None else jnp.zeros((b, t), jnp.int32)
    segments = segments.astype(jnp.int32)
    padded = splash_padded_length(t)
    if padded != t:
        extra = padded - t
        pad_id = jnp.max(segments) + 1  # differs from every real segment id
        segments = jnp.concatenate(
            [segments, jnp.broadcast_to(pad_id, (b, extra)).astype(jnp.int32)], axis=1
        )
        widths = ((0, 0), (0, extra), (0, 0), (0, 0))
        q, k, v = jnp.pad(q, widths), jnp.pad(k, widths), jnp.pad(v, widths)

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
        out = local(q, k, v, segments)
    else:
        qspec = logical_to_spec(("act_batch", None, "act_heads", None), q.shape, mesh)
        kspec = logical_to_spec(("act_batch", None, "act_kv_heads", None), k.shape, mesh)
        if qspec[2] != kspec[2]:  # kv heads replicated: keep q heads whole too
            qspec = jax.sharding.PartitionSpec(qspec[0], None, None, None)
            kspec = jax.sharding.PartitionSpec(kspec[0], None, None, None)
        sspec = jax.sharding.PartitionSpec(qspec[0], None)
        out = jax.shard_map(
            local, mesh=mesh, in_specs=(qspec, kspec, kspec, sspec), out_specs=qspec, check_vma=False
        )(q, k, v, segments)
    return out[:, :t] if padded != t else out
