"""Context parallelism: attention over rows whose tokens are split on the ``sequence`` mesh axis.

With a mesh whose ``sequence`` axis has n > 1 devices, every activation's token axis is split
n ways (the ``act_seq`` rule) and attention runs as one of two kernels, inside ``shard_map``
over the whole mesh (batch over data/fsdp, heads over tensor, tokens over sequence):

- ``ring``: each device keeps its query block and passes its key/value block (with the blocks'
  slot indices and segment ids) around the ring, n steps; each step folds one key/value block
  into an online softmax (running max, normaliser and weighted sum in fp32), so no device ever
  holds more than one remote block or a [T, T] score matrix. The next block's ``ppermute`` is
  issued before the current block's compute and does not depend on it, so XLA overlaps the
  transfer with the matmuls. Each step's block is rematerialised in the backward pass (only
  the softmax statistics are saved): activation memory per device is O(T/n), not O(T^2/n).
  Within a block the keys are folded ``KV_CHUNK`` at a time, so scores stay [T/n, KV_CHUNK].
- ``allgather``: keys/values (and their slots and segments) are all-gathered along the
  sequence axis, then each device attends its query block to the whole row at once: one
  collective per layer, the keys folded ``KV_CHUNK`` at a time.

Causality and packing are decided from the slot indices and segment ids that travel with the
blocks, never from block positions, so the model may reorder tokens before splitting them:
``load_balance_permutation`` gives the "zigzag" order in which device i holds chunks i and
2n-1-i of 2n equal chunks, so every device has the same share of the causal triangle.
Grouped-query attention folds the query heads sharing a key/value head into one matmul.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

CONTEXT_PARALLEL_IMPLS = ("ring", "allgather")
KV_CHUNK = 1024  # keys folded into the online softmax this many at a time (bounds scores)
SEQUENCE_AXIS = "sequence"
_NEG = -0.7 * float(jnp.finfo(jnp.float32).max)  # the attention module's MASK_VALUE


def sequence_shards(mesh) -> int:
    """Size of the mesh's ``sequence`` axis (1 without a mesh or without that axis)."""
    if mesh is None:
        return 1
    return int(dict(mesh.shape).get(SEQUENCE_AXIS, 1))


def load_balance_permutation(seq_len: int, shards: int) -> np.ndarray:
    """The token order that balances causal attention over ``shards`` devices.

    The row is cut into 2 x shards equal chunks; device i gets chunks i and 2*shards-1-i
    (early and late tokens together). ``order[j]`` is the original index of the token at
    new position j. Needs ``seq_len`` divisible by 2 x shards.
    """
    if seq_len % (2 * shards):
        raise ValueError(
            f"load-balanced context parallelism cuts rows into 2 x sequence = {2 * shards} "
            f"equal chunks: the row length {seq_len} is not a multiple of {2 * shards}; "
            "pad the rows (train.seq_len) or set model.context_load_balance=False")
    chunk = seq_len // (2 * shards)
    chunks = np.arange(seq_len).reshape(2 * shards, chunk)
    return np.concatenate([np.concatenate([chunks[i], chunks[2 * shards - 1 - i]])
                           for i in range(shards)])


def _block(q, k, v, q_slots, kv_slots, q_seg, kv_seg, stats):
    """Fold one key/value block into the online-softmax statistics (m, l, acc).

    q [B, Tq, K, G, D] (pre-scaled), k/v [B, S, K, D], slots/segments [B, Tq] / [B, S];
    m, l [B, K, G, Tq] and acc [B, K, G, Tq, D] in fp32."""
    m, l, acc = stats
    s = jnp.einsum("btkgd,bskd->bkgts", q, k, preferred_element_type=jnp.float32)
    allowed = kv_slots[:, None, :] <= q_slots[:, :, None]
    if q_seg is not None:
        allowed &= q_seg[:, :, None] == kv_seg[:, None, :]
    allowed = allowed[:, None, None]  # [B, 1, 1, Tq, S]
    s = jnp.where(allowed, s, _NEG)
    m_new = jnp.maximum(m, s.max(axis=-1))
    p = jnp.where(allowed, jnp.exp(s - m_new[..., None]), 0.0)
    correction = jnp.exp(m - m_new)
    l = l * correction + p.sum(axis=-1)
    pv = jnp.einsum("bkgts,bskd->bkgtd", p.astype(v.dtype), v,
                    preferred_element_type=jnp.float32)
    return m_new, l, acc * correction[..., None] + pv


def _attend(q, k, v, q_slots, kv_slots, q_seg, kv_seg, stats, chunk: int | None = None):
    """``_block`` over the keys ``chunk`` at a time (a scan, each chunk rematerialised), so
    scores never exceed [Tq, chunk] however long the gathered or passed block is."""
    chunk = KV_CHUNK if chunk is None else chunk
    s = k.shape[1]
    if s <= chunk or s % chunk:
        return _block(q, k, v, q_slots, kv_slots, q_seg, kv_seg, stats)
    n = s // chunk

    def split(a):
        return None if a is None else jnp.swapaxes(a.reshape(a.shape[0], n, chunk, *a.shape[2:]), 0, 1)

    packed = kv_seg is not None
    xs = (split(k), split(v), split(kv_slots), split(kv_seg) if packed else split(kv_slots))
    fold = jax.checkpoint(lambda st, c: _block(q, c[0], c[1], q_slots, c[2], q_seg,
                                               c[3] if packed else None, st))
    stats, _ = jax.lax.scan(lambda st, c: (fold(st, c), None), stats, xs)
    return stats


def _local_attention(q, k, v, q_slots, kv_slots, q_seg, kv_seg, *, impl: str, shards: int):
    b, tq, h, d = q.shape
    kv_heads = k.shape[2]
    groups = h // kv_heads
    qg = (q.astype(jnp.float32) * (1.0 / math.sqrt(d))).astype(q.dtype)
    qg = qg.reshape(b, tq, kv_heads, groups, d)
    stats = (jnp.full((b, kv_heads, groups, tq), _NEG, jnp.float32),
             jnp.zeros((b, kv_heads, groups, tq), jnp.float32),
             jnp.zeros((b, kv_heads, groups, tq, d), jnp.float32))
    packed = q_seg is not None
    if impl == "allgather":
        gather = lambda a: jax.lax.all_gather(a, SEQUENCE_AXIS, axis=1, tiled=True)  # noqa: E731
        k, v, kv_slots = gather(k), gather(v), gather(kv_slots)
        kv_seg = gather(kv_seg) if packed else None
        m, l, acc = _attend(qg, k, v, q_slots, kv_slots, q_seg, kv_seg, stats)
    else:
        ring = [(i, (i + 1) % shards) for i in range(shards)]
        block = jax.checkpoint(
            lambda st, blk: _attend(qg, blk[0], blk[1], q_slots, blk[2], q_seg,
                                    blk[3] if packed else None, st))

        def step(carry, _):
            st, blk = carry
            nxt = jax.tree.map(lambda a: jax.lax.ppermute(a, SEQUENCE_AXIS, ring), blk)
            return (block(st, blk), nxt), None

        blocks = (k, v, kv_slots, kv_seg if packed else jnp.zeros_like(kv_slots))
        (stats, blocks), _ = jax.lax.scan(step, (stats, blocks), None, length=shards - 1)
        m, l, acc = block(stats, blocks)
    out = jnp.where(l[..., None] > 0, acc / jnp.maximum(l, 1e-30)[..., None], 0.0)
    return out.transpose(0, 3, 1, 2, 4).reshape(b, tq, h, d).astype(q.dtype)


def context_parallel_attention(q, k, v, mask, mesh, *, impl: str = "ring"):
    """Self-attention of rows split over ``mesh``'s sequence axis (module docstring).

    q [B, T, H, Dh], k/v [B, T, K, Dh] (global shapes), ``mask`` an ``AttentionMask`` whose
    slots (and segments, for packed rows) are [B, T]."""
    from eurollm_jax.parallel.rules import logical_to_spec

    if impl not in CONTEXT_PARALLEL_IMPLS:
        raise ValueError(f"context_parallel must be one of {CONTEXT_PARALLEL_IMPLS}, got {impl!r}")
    shards = sequence_shards(mesh)
    t = q.shape[1]
    if t % shards:
        raise ValueError(f"rows of {t} tokens do not split over the sequence axis ({shards})")
    qspec = logical_to_spec(("act_batch", "act_seq", "act_heads", None), q.shape, mesh)
    kspec = logical_to_spec(("act_batch", "act_seq", "act_kv_heads", None), k.shape, mesh)
    if qspec[2] != kspec[2]:  # KV heads replicated: keep the query heads whole too
        qspec = P(qspec[0], qspec[1], None, None)
        kspec = P(kspec[0], kspec[1], None, None)
    sspec = P(qspec[0], qspec[1])
    packed = mask.q_segments is not None

    def local(q, k, v, q_slots, kv_slots, *segments):
        q_seg, kv_seg = segments if packed else (None, None)
        return _local_attention(q, k, v, q_slots, kv_slots, q_seg, kv_seg, impl=impl,
                                shards=shards)

    args = [q, k, v, mask.q_slots.astype(jnp.int32), mask.kv_slots.astype(jnp.int32)]
    specs = [qspec, kspec, kspec, sspec, sspec]
    if packed:
        args += [mask.q_segments.astype(jnp.int32), mask.kv_segments.astype(jnp.int32)]
        specs += [sspec, sspec]
    return jax.shard_map(local, mesh=mesh, in_specs=tuple(specs), out_specs=qspec,
                         check_vma=False)(*args)
