"""Host data -> global batches: which rows each process loads, and one way to place them.

Training, evaluation and inference all feed ``[B, ...]`` arrays whose leading (batch) axis is
split over the mesh's data axes (``batch_sharding``). With several processes each one owns
only the devices of its host, so it must load exactly the rows those devices hold:

- ``host_batch_layout(mesh, global_batch)`` derives that from the mesh: the contiguous block
  of global rows this process's devices hold (``rows``), and which *data shard* that block
  is (``shard_index`` of ``shard_count``). Processes whose devices hold replicas of the same
  rows (a batch axis smaller than the process count, e.g. a pure tensor-parallel mesh over
  hosts) get the same shard index, so with the same seed they load identical rows.
- ``make_global_batch(batch, mesh, global_batch)`` turns one process's rows (or the whole
  global batch, which every process holds in inference) into global ``jax.Array``s.

Layouts whose per-process rows are not one aligned contiguous block (a device order that
interleaves hosts along the batch axis) are refused with an explanation, at start-up.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import numpy as np

from eurollm_jax.parallel.rules import ShardingError, batch_sharding


@dataclasses.dataclass(frozen=True)
class HostBatchLayout:
    """The rows of a global batch that this process holds."""

    global_batch: int
    start: int  # first global row on this process's devices
    stop: int  # one past the last
    shard_index: int  # which of the shard_count data shards these rows are
    shard_count: int  # distinct row blocks over all processes

    @property
    def local_batch(self) -> int:
        return self.stop - self.start

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)


def _row_blocks(mesh, global_batch: int, process_index: int, process_of) -> set[tuple[int, int]]:
    sharding = batch_sharding(mesh, 1)
    blocks = set()
    for device, index in sharding.devices_indices_map((global_batch,)).items():
        if process_of(device) == process_index:
            sl = index[0]
            blocks.add((sl.start or 0, global_batch if sl.stop is None else sl.stop))
    return blocks


def host_batch_layout(
    mesh, global_batch: int, process_index: int | None = None, *, process_of=None
) -> HostBatchLayout:
    """Where this process's rows of a ``global_batch``-row batch lie (see the module doc).

    ``process_index`` defaults to this process; ``process_of(device)`` (default
    ``device.process_index``) lets a single process check the layout of a multi-host mesh.
    """
    global_batch = int(global_batch)
    data_ways = mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
    if global_batch <= 0 or global_batch % data_ways:
        raise ShardingError(
            f"the global batch ({global_batch} rows) must be a positive multiple of the mesh's "
            f"data axes (data x fsdp = {data_ways}); change the batch size or the mesh"
        )
    pid = jax.process_index() if process_index is None else int(process_index)
    blocks = sorted(
        _row_blocks(mesh, global_batch, pid, process_of or (lambda d: d.process_index))
    )
    if not blocks:
        raise ShardingError(f"process {pid} holds no device of the mesh; every process must")
    start, stop = blocks[0][0], blocks[-1][1]
    covered = sum(b - a for a, b in blocks)
    size = stop - start
    if covered != size or global_batch % size or start % size:
        raise ShardingError(
            f"process {pid} holds batch rows {blocks} of {global_batch}: not one aligned "
            f"contiguous block, so it cannot load them as one data shard. Build the mesh with "
            f"eurollm_jax.parallel.create_mesh (devices in process order along the data axes), "
            f"or make the data/fsdp axes span whole hosts"
        )
    return HostBatchLayout(global_batch, start, stop, start // size, global_batch // size)


def make_global_batch(
    batch: Mapping[str, np.ndarray], mesh, global_batch: int, *, dtype=None
) -> dict:
    """Host arrays ``[rows, ...]`` -> global ``jax.Array``s ``[global_batch, ...]`` on ``mesh``.

    ``batch`` holds either this process's rows (``host_batch_layout(...).local_batch`` of
    them: training and evaluation) or the whole global batch (inference, where every process
    has every prompt; only this process's rows are placed). The number of rows given cannot
    tell which, so ``global_batch`` is always explicit.
    ``dtype`` casts every array (e.g. np.int32).
    """
    layout = host_batch_layout(mesh, global_batch)
    out = {}
    for key, value in batch.items():
        value = np.asarray(value, dtype)
        rows = value.shape[0]
        if rows == layout.global_batch and layout.local_batch != rows:
            value = value[layout.rows]
        elif rows != layout.local_batch:
            raise ShardingError(
                f"batch[{key!r}] has {rows} rows; this process holds {layout.local_batch} of the "
                f"global {layout.global_batch} (rows {layout.start}:{layout.stop}): pass those "
                f"rows or the whole global batch"
            )
        sharding = batch_sharding(mesh, value.ndim)
        global_shape = (layout.global_batch,) + value.shape[1:]
        if jax.process_count() == 1:
            out[key] = jax.device_put(value, sharding)
        else:
            out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
    return out

