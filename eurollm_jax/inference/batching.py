"""Shape buckets and host -> device placement shared by generation, scoring and capture.

A handful of shapes cover every request: ``bucket_length`` pads sequence lengths,
``bucket_batch`` pads the row count to a power of two that the mesh's batch axes divide,
``length_batches`` groups requests (longest first) under a token budget. ``put_batch``
places a [B, ...] host array split like activations (``parallel.make_global_batch``),
``put_replicated`` copies one to every device, and ``mesh_scope`` sets the model's mesh
around a jitted call.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from eurollm_jax.parallel import batch_sharding, make_global_batch

PAD_ID = 0


def bucket_length(n: int, minimum: int = 16) -> int:
    """Padded length for ``n``: a power of two up to 1024, then a multiple of 512."""
    n = max(int(n), 1)
    if n <= 1024:
        return max(minimum, 1 << (n - 1).bit_length())
    return -(-n // 512) * 512


def bucket_batch(n: int, mesh) -> int:
    """Padded row count for ``n`` rows: a power of two, rounded up to a multiple of the
    number of batch shards of ``mesh``."""
    b = 1 << (max(n, 1) - 1).bit_length()
    shards = 1
    if mesh is not None:
        axes = batch_sharding(mesh, 1).spec[0] or ()
        shards = math.prod(mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes))
    return -(-b // shards) * shards


def length_batches(lengths: Sequence[int], max_batch_tokens: int) -> Iterator[list[int]]:
    """Indices into ``lengths``, longest first, in batches of as many rows as fit
    ``max_batch_tokens`` at the bucketed length of the batch's longest row (at least one)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    start = 0
    while start < len(order):
        rows = max(1, max_batch_tokens // bucket_length(lengths[order[start]]))
        yield order[start : start + rows]
        start += rows


def model_mesh(state) -> jax.sharding.Mesh | None:
    """The mesh the model's parameters live on (None for single-device arrays)."""
    for leaf in jax.tree.leaves(state):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, NamedSharding):
            return sharding.mesh
    return None


def mesh_scope(mesh):
    """``jax.set_mesh(mesh)`` for a multi-device mesh, else a no-op context."""
    if mesh is None or mesh.size == 1:
        return contextlib.nullcontext()
    return jax.set_mesh(mesh)


def put_batch(x, mesh):
    """Host array [B, ...] (the whole batch, which every process holds) -> device array,
    the batch split over the mesh's batch axes (``parallel.make_global_batch``)."""
    x = np.asarray(x)
    if mesh is None or mesh.size == 1:
        return jnp.asarray(x)
    return make_global_batch({"x": x}, mesh, x.shape[0])["x"]


def put_replicated(x, mesh, dtype=None):
    """Host array (or None) -> the same array on every device of ``mesh`` (or None)."""
    if x is None:
        return None
    x = np.asarray(x, dtype)
    if mesh is None or mesh.size == 1:
        return jnp.asarray(x)
    return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
