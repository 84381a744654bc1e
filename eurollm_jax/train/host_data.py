"""The trainer's view of the data: the rows of each global batch that this process loads.

The global batch is cut into ``data.shards`` logical data shards of equal row counts, shard
``i`` holding rows ``[i * R, (i + 1) * R)``; shard ``i`` is the data pipeline's
``shard_index=i`` of ``shard_count=data.shards`` (disjoint documents). A process loads the
shards that its devices' rows cover (``parallel.host_batch_layout``), one iterator each, and
concatenates them in shard order. So the global batch depends only on ``data.shards``, not
on how many processes share the work: a 2-host run and a 1-host run with the same
``data.shards`` train on identical batches. ``data.shards = 0`` uses one shard per row
block of the mesh over the processes (each process reads one iterator).

``HostBatches`` has the iterator surface the loop and its hooks use: ``next``,
``get_state``/``set_state`` (one state per shard), ``set_mixture_weights`` (every shard),
``mixture_weights``, ``default_mixture``, ``source_names``. A finite (evaluation) iterator
ends when every shard has ended; a shard that ended earlier contributes zero rows (padding,
no loss weight) meanwhile.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from eurollm_jax.parallel import HostBatchLayout


class DataShardError(ValueError):
    """``data.shards`` that does not fit the batch or the processes' layout."""


def shard_range(layout: HostBatchLayout, num_shards: int) -> range:
    """The logical data shards whose rows this process holds."""
    num_shards = int(num_shards) or layout.shard_count
    if layout.global_batch % num_shards:
        raise DataShardError(
            f"data.shards={num_shards} must divide the global batch ({layout.global_batch} rows)"
        )
    rows = layout.global_batch // num_shards
    if layout.start % rows or layout.stop % rows:
        raise DataShardError(
            f"data.shards={num_shards}: each shard has {rows} rows, but this process holds rows "
            f"{layout.start}:{layout.stop}; use a multiple of {layout.shard_count} shards "
            f"(the row blocks of this mesh over the processes)"
        )
    return range(layout.start // rows, layout.stop // rows)


class HostBatches:
    """Concatenated batches of this process's data shards (see the module docstring)."""

    def __init__(self, make: Callable[[int, int, int], object], layout: HostBatchLayout,
                 num_shards: int):
        num_shards = int(num_shards) or layout.shard_count
        self.shards = list(shard_range(layout, num_shards))
        rows = layout.global_batch // num_shards
        self.iterators = [make(i, num_shards, rows) for i in self.shards]
        self._ended = [False] * len(self.iterators)
        self._empty = None

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        parts = []
        for i, it in enumerate(self.iterators):
            if not self._ended[i]:
                try:
                    parts.append(next(it))
                    continue
                except StopIteration:
                    self._ended[i] = True
            parts.append(None)
        if all(self._ended):
            raise StopIteration
        if len(parts) == 1:
            return parts[0]
        template = next(p for p in parts if p is not None)
        if self._empty is None:
            self._empty = {k: np.zeros_like(v) for k, v in template.items()}
        parts = [self._empty if p is None else p for p in parts]
        return {k: np.concatenate([p[k] for p in parts]) for k in template}

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict:
        return {"shards": self.shards, "states": [it.get_state() for it in self.iterators]}

    def set_state(self, state: Mapping) -> None:
        if "shards" not in state:  # a checkpoint of one iterator per process
            state = {"shards": self.shards, "states": [state]}
        if list(state["shards"]) != self.shards:
            raise DataShardError(
                f"the checkpoint's data iterators are of shards {state['shards']}, this process "
                f"loads shards {self.shards}; resume with the same data.shards and mesh layout"
            )
        for it, s in zip(self.iterators, state["states"]):
            it.set_state(s)
        self._ended = [False] * len(self.iterators)

    # ------------------------------------------------------------------ mixture
    @property
    def source_names(self) -> list[str]:
        return list(self.iterators[0].source_names)

    @property
    def mixture_weights(self) -> dict[str, float]:
        return self.iterators[0].mixture_weights

    @property
    def default_mixture(self) -> dict[str, float]:
        return self.iterators[0].default_mixture

    def set_mixture_weights(self, weights: Mapping[str, float], normalize: bool = True) -> None:
        for it in self.iterators:
            it.set_mixture_weights(weights, normalize=normalize)

    def close(self) -> None:
        for it in self.iterators:
            close = getattr(it, "close", None)
            if close is not None:
                close()
