"""The Grain input pipeline: per-source records -> mixture -> packing -> batches.

This module owns the one training-data path: every batch the trainer sees, for every
``data.source``, comes out of ``build_dataset`` / ``make_iterator`` here, with one batch
schema (``BATCH_KEYS``), one mixture sampler, one packing, one iterator state format and one
``set_mixture_weights``. (``eurollm_jax.parallel.make_global_batch`` places a host batch
on a mesh.)

Batches are dicts of numpy arrays, all ``[B, T]``:

- ``tokens`` int32; ``segment_ids`` int32 (1..n: the documents packed in the row, 0: padding);
  ``positions`` int32 (restart at 0 for every segment); ``loss_mask`` int32 (1 where the token
  at that position is a training target: every real token for pre-training, the assistant
  contents and their ``<|im_end|>`` for SFT). Nothing is shifted: the trainer predicts
  ``tokens[:, t+1]`` from the prefix up to ``t``.
- optional ``source_ids`` int32 (index into ``iterator.source_names``, -1: padding) with
  ``emit_source_ids=True``, for per-source losses.

Stages, all inside one Grain ``IterDataset`` node per worker process:

1. **Sources**: one per (language, source) of the token manifest (``"<lang>/<source>"``,
   ArrayRecord shards read by ``records.ShardedRecords``), or in-memory token corpora
   (``build_dataset(config, {name: records.InMemoryRecords(docs)}, kind=...)``: the
   trainer's synthetic, byte-level text and SFT sources), read through the same interface
   and the same encoded records. Each source's records are split across hosts
   (``shard_index/shard_count``, default the JAX process) and Grain workers, then visited
   in a fresh seeded permutation every epoch.
   With ``num_epochs=None`` every source repeats forever; a source with fewer records than
   readers is then read whole by each reader (it could not be split). With a finite
   ``num_epochs`` a source stops after that many passes and the mixture renormalises over
   the sources left; iteration ends when none is left.
2. **Mixture**: a deterministic low-discrepancy sampler. Each draw takes the source whose
   share is furthest below its target weight (``unit="tokens"``: shares of tokens,
   ``"examples"``: of documents), so proportions are exact up to one document at any point.
   Weights: explicit ``{name: w}``, ``"proportional"`` (to tokens of each source),
   ``"temperature"`` (over languages, ``q_l ∝ n_l^(1/T)``, split within a language by
   tokens) or ``"uniform"``. Every source is available; unnamed ones get weight 0.
3. **Packing** (batch at a time): ``"concat"`` concatenates documents and splits them at row
   ends (pre-training; the remainder continues as a new segment in the next row);
   ``"best_fit"`` places whole documents best-fit-decreasing into the rows of a batch and
   carries those that do not fit to the next batch, never splitting one (SFT; longer than
   ``seq_len``: dropped or truncated, counted). The default follows the corpus kind
   (manifest ``kind`` or ``kind=``): ``sft`` -> best_fit, otherwise concat.
4. **Workers**: ``num_workers > 0`` runs the node in Grain ``mp_prefetch`` worker processes,
   each on its own slice of every source; batches are interleaved round-robin.

**State.** ``get_state()`` is a JSON-serialisable dict (Grain's iterator state); restoring it
with ``set_state`` (same config and worker count) reproduces the following batches exactly.
Each worker's state holds its mixture (weights, counts, positions per source) and the
document references (source, record) of the pending document(s), re-read on restore.

**Changing the mixture while training.** ``iterator.set_mixture_weights({name: w, ...})``
takes effect at the next batch and is part of the saved state: it rewrites the weights in
every worker's mixture state and restores that state (workers keep running; prefetched
batches are discarded). Only the carried-over remainder of documents drawn before the change
still appears in the next batch. This is the interface for online mixture optimisation
(HBO): read ``iterator.mixture_weights``, set new ones every K steps.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import logging
import math
import os
from typing import Any, Iterator, Mapping, Sequence

import grain
import numpy as np

from eurollm_jax.data.records import InMemoryRecords, ShardedRecords, decode_record
from eurollm_jax.data.tokenize_job import load_manifest

Records = ShardedRecords | InMemoryRecords  # len(), read(indices) -> encoded records
KINDS = ("pretrain", "sft")

MIXTURE_KEY = "eurollm_mixture"
PACKER_KEY = "eurollm_packer"
STATE_VERSION = 1
BATCH_KEYS = ("tokens", "segment_ids", "positions", "loss_mask")


class MixtureError(ValueError):
    """A mixture names unknown sources or has unusable weights."""


# ============================================================================ weights


def resolve_weights(
    manifest: Mapping, mixture: Any = "proportional", temperature: float = 3.0
) -> dict[str, float]:
    """Normalised weights over every source of ``manifest`` (unnamed sources: 0)."""
    sources = manifest["sources"]
    names = list(sources)
    where = (f"the token manifest {manifest['root']}" if manifest.get("root")
             else "the in-memory corpus")
    if not names:
        raise MixtureError(f"{where} has no sources")
    tokens = {n: float(sources[n]["tokens"]) for n in names}
    if isinstance(mixture, str):
        if mixture == "proportional":
            raw = dict(tokens)
        elif mixture == "uniform":
            raw = {n: 1.0 for n in names}
        elif mixture == "temperature":
            if temperature <= 0:
                raise MixtureError(f"temperature must be > 0, got {temperature}")
            by_lang: dict[str, float] = collections.defaultdict(float)
            for n in names:
                by_lang[sources[n]["language"]] += tokens[n]
            alpha = 0.0 if math.isinf(temperature) else 1.0 / temperature
            lang_w = {lang: (t ** alpha if t > 0 else 0.0) for lang, t in by_lang.items()}
            raw = {
                n: lang_w[sources[n]["language"]] * tokens[n] / by_lang[sources[n]["language"]]
                if by_lang[sources[n]["language"]] > 0 else 0.0
                for n in names
            }
        else:
            raise MixtureError(
                f"unknown mixture {mixture!r}: give {{source: weight}}, 'proportional', "
                "'temperature' or 'uniform'"
            )
    else:
        raw = {n: 0.0 for n in names}
        unknown = sorted(set(mixture) - set(names))
        if unknown:
            hint = (" (names are '<lang>/<source>'; tokenize the missing data first)"
                    if manifest.get("root") else "")
            raise MixtureError(
                f"mixture names source(s) {unknown} that are not in {where}; available: "
                f"{names[:20]}{' ...' if len(names) > 20 else ''}{hint}"
            )
        for n, w in mixture.items():
            w = float(w)
            if not math.isfinite(w) or w < 0:
                raise MixtureError(f"weight of {n!r} must be finite and >= 0, got {w}")
            raw[n] = w
    for n, w in raw.items():
        if w > 0 and sources[n]["records"] == 0:
            raise MixtureError(f"source {n!r} has weight {w} but no records")
    total = sum(raw.values())
    if total <= 0:
        raise MixtureError("mixture weights sum to 0: give at least one positive weight")
    return {n: raw[n] / total for n in names}


# ============================================================================ mixture

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _round_keys(key: Sequence[int], rounds: int = 4) -> list[np.uint64]:
    message = b"eurollm-permutation:" + ",".join(str(int(k)) for k in key).encode()
    digest = hashlib.blake2b(message, digest_size=8 * rounds).digest()
    return [np.uint64(int.from_bytes(digest[8 * i:8 * i + 8], "little")) for i in range(rounds)]


def permute_indices(positions: np.ndarray, n: int, key: Sequence[int]) -> np.ndarray:
    """Position -> index under a keyed pseudo-random permutation of ``range(n)``.

    A 4-round Feistel network on the smallest even bit width covering ``n``, cycle-walked
    into ``[0, n)``: O(1) memory for any ``n``, vectorised, and defined here (not by a
    library's RNG stream), so checkpoints stay valid across numpy/grain upgrades.
    """
    x = np.asarray(positions, dtype=np.uint64)
    if n <= 1:
        return np.zeros_like(x)
    half = max(1, (int(n - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    shift = np.uint64(half)
    keys = _round_keys(key)

    def feistel(v: np.ndarray) -> np.ndarray:
        left, right = v >> shift, v & mask
        with np.errstate(over="ignore"):
            for k in keys:
                f = (right + k) * np.uint64(0x9E3779B97F4A7C15) & _M64
                f ^= f >> np.uint64(29)
                f = f * np.uint64(0xBF58476D1CE4E5B9) & _M64
                f ^= f >> np.uint64(32)
                left, right = right, left ^ (f & mask)
        return (left << shift) | right

    out = feistel(x)
    todo = out >= np.uint64(n)
    while todo.any():  # cycle walking: the domain is < 4n, so this ends quickly
        out[todo] = feistel(out[todo])
        todo = out >= np.uint64(n)
    return out.astype(np.int64)


class MixtureSampler:
    """Deterministic mixture over sources with per-epoch permutations and read-ahead."""

    def __init__(
        self,
        sources: Sequence[Records],
        names: Sequence[str],
        weights: Sequence[float],
        *,
        unit: str = "tokens",
        seed: int = 0,
        num_epochs: int | None = None,
        offset: int = 0,
        stride: int = 1,
        read_ahead: int = 128,
    ):
        if unit not in ("tokens", "examples"):
            raise ValueError(f"mixture unit must be 'tokens' or 'examples', got {unit!r}")
        self.sources = list(sources)
        self.names = list(names)
        self.unit = unit
        self.seed = int(seed)
        self.num_epochs = num_epochs
        self.read_ahead = max(int(read_ahead), 1)
        self.slice = (int(offset), int(stride))
        self._ranges = []
        for src in self.sources:
            r = range(offset, len(src), stride)
            if len(r) == 0 and num_epochs is None and len(src) > 0:
                r = range(0, len(src))  # too small to split: every reader reads it whole
            self._ranges.append(r)
        self._set_weights(weights)
        self._counts = [0] * len(self.sources)
        self._pos = [[0, 0] for _ in self.sources]
        self._exhausted = [len(r) == 0 for r in self._ranges]
        self._buffers = [collections.deque() for _ in self.sources]
        self._refresh_active()

    def _set_weights(self, weights: Sequence[float]) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.sources),) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise MixtureError(f"need {len(self.sources)} finite weights >= 0, got {weights}")
        self._weights = (w / w.sum()).tolist() if w.sum() > 0 else w.tolist()

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict:
        return {
            MIXTURE_KEY: STATE_VERSION,
            "names": list(self.names),
            "weights": list(self._weights),
            "counts": list(self._counts),
            "positions": [list(p) for p in self._pos],
            "exhausted": list(self._exhausted),
            "slice": list(self.slice),
        }

    def set_state(self, state: Mapping) -> None:
        if list(state["names"]) != self.names:
            raise MixtureError(
                "iterator state was saved with different sources "
                f"({len(state['names'])} vs {len(self.names)}): restore it with the same manifest"
            )
        if list(state["slice"]) != list(self.slice):
            raise MixtureError(
                f"iterator state was saved for reader slice {state['slice']} but this reader is "
                f"{list(self.slice)}: restore with the same num_workers and host count"
            )
        self._set_weights(state["weights"])
        self._counts = [int(c) for c in state["counts"]]
        self._pos = [[int(e), int(k)] for e, k in state["positions"]]
        self._exhausted = [bool(x) for x in state["exhausted"]]
        for b in self._buffers:
            b.clear()
        self._refresh_active()

    @property
    def weights(self) -> list[float]:
        return list(self._weights)

    @property
    def records_per_epoch(self) -> int:
        """Records of this reader's slice, over every source."""
        return sum(len(r) for r in self._ranges)

    # ------------------------------------------------------------------ sampling

    def _fill(self, s: int) -> None:
        r = self._ranges[s]
        epoch, k = self._pos[s]
        indices: list[int] = []
        while len(indices) < self.read_ahead:
            if self.num_epochs is not None and epoch >= self.num_epochs:
                break
            take = min(self.read_ahead - len(indices), len(r) - k)
            local = permute_indices(np.arange(k, k + take), len(r), (self.seed, s, epoch))
            indices.extend(r.start + r.step * local)
            k += take
            if k == len(r):
                epoch, k = epoch + 1, 0
        indices = [int(i) for i in indices]
        records = self.sources[s].read(indices)
        self._buffers[s].extend(zip(indices, records))

    def _refresh_active(self) -> None:
        """Recompute the active set and the weights renormalised over it."""
        w = np.asarray(self._weights, dtype=np.float64)
        active = (w > 0) & ~np.asarray(self._exhausted, dtype=bool)
        self._active = active
        self._active_weights = np.where(active, w, 0.0)
        total = self._active_weights.sum()
        if total > 0:
            self._active_weights = self._active_weights / total
        self._penalty = np.where(active, 0.0, -np.inf)
        self._counts_np = np.asarray(self._counts, dtype=np.float64)
        self._active_total = float(self._counts_np[active].sum())

    def _choose(self) -> int | None:
        """The active source furthest below its target share (first one on ties)."""
        if not self._active.any():
            return None
        deficit = self._active_weights * self._active_total - self._counts_np + self._penalty
        return int(np.argmax(deficit))

    def draw(self):
        """Next document: ``((source, record), tokens, loss_mask|None)``, or None when done."""
        s = self._choose()
        if s is None:
            return None
        if not self._buffers[s]:
            self._fill(s)
        index, record = self._buffers[s].popleft()
        pos = self._pos[s]
        pos[1] += 1
        if pos[1] == len(self._ranges[s]):
            pos[0], pos[1] = pos[0] + 1, 0
        tokens, mask = decode_record(record)
        step = len(tokens) if self.unit == "tokens" else 1
        self._counts[s] += step
        self._counts_np[s] += step
        self._active_total += step
        if self.num_epochs is not None and pos[0] >= self.num_epochs:
            self._exhausted[s] = True
            self._refresh_active()
        return (s, int(index)), tokens, mask

    def read(self, ref: Sequence[int]):
        s, index = int(ref[0]), int(ref[1])
        tokens, mask = decode_record(self.sources[s].read([index])[0])
        return (s, index), tokens, mask


# ============================================================================ packing


@dataclasses.dataclass(frozen=True)
class PackingSpec:
    batch_size: int  # rows per batch of this host
    seq_len: int
    mode: str = "concat"  # or "best_fit"
    pad_id: int = 0
    long_examples: str = "drop"  # best_fit: "drop" or "truncate" documents longer than seq_len
    emit_source_ids: bool = False


_STAT_KEYS = ("batches", "docs", "tokens_in", "tokens_out", "padding", "split_docs",
              "truncated_docs", "truncated_tokens", "dropped_docs", "dropped_tokens")


class PackedBatchDataset(grain.IterDataset):
    """A Grain source node producing packed ``[B, T]`` batches from a mixture of sources.

    Supports Grain's in-place slicing, so ``mp_prefetch`` gives each worker its own slice.
    """

    def __init__(
        self,
        sources: Sequence[Records],
        names: Sequence[str],
        weights: Sequence[float],
        packing: PackingSpec,
        *,
        shard_index: int = 0,
        shard_count: int = 1,
        **mixture_options,
    ):
        """``mixture_options``: ``MixtureSampler``'s ``unit``, ``seed``, ``num_epochs``,
        ``read_ahead``, for the sampler each iterator makes over its slice of the records."""
        super().__init__()
        if packing.mode not in ("concat", "best_fit"):
            raise ValueError(f"packing must be 'concat' or 'best_fit', got {packing.mode!r}")
        if packing.long_examples not in ("drop", "truncate"):
            raise ValueError(f"long_examples must be 'drop' or 'truncate', got "
                             f"{packing.long_examples!r}")
        self._sources = list(sources)
        self._names = list(names)
        self._weights = list(weights)
        self._packing = packing
        self._mixture_options = mixture_options
        self._shard_index, self._shard_count = int(shard_index), int(shard_count)
        self._offset, self._stride = self._shard_index, self._shard_count

    def set_slice(self, sl: slice, sequential_slice: bool = False) -> None:
        """Grain worker slicing: worker ``sl.start`` of ``sl.step`` reads its own records."""
        del sequential_slice  # records are always strided; order comes from the permutation
        worker, workers = sl.start or 0, sl.step or 1
        self._offset = self._shard_index + worker * self._shard_count
        self._stride = self._shard_count * workers

    def __iter__(self) -> "PackedBatchIterator":
        mixture = MixtureSampler(self._sources, self._names, self._weights, offset=self._offset,
                                 stride=self._stride, **self._mixture_options)
        return PackedBatchIterator(mixture, self._packing)

    def __str__(self) -> str:
        return (f"PackedBatchDataset({len(self._names)} sources, {self._packing.mode}, "
                f"[{self._packing.batch_size}, {self._packing.seq_len}])")


class PackedBatchIterator(grain.DatasetIterator):
    """Iterator of ``PackedBatchDataset``; its state is JSON-serialisable."""

    def __init__(self, mixture: MixtureSampler, packing: PackingSpec):
        super().__init__()
        self._mix = mixture
        self._spec = packing
        self._arange = np.arange(packing.seq_len, dtype=np.int32)
        self._pending: list = []  # [(ref, tokens, mask, offset)]
        self._pstats = {k: 0 for k in _STAT_KEYS}
        self._done = False

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict:
        return {
            PACKER_KEY: STATE_VERSION,
            "mixture": self._mix.get_state(),
            "pending": [[int(r[0]), int(r[1]), int(off)] for r, _, _, off in self._pending],
            "stats": dict(self._pstats),
            "done": self._done,
        }

    def set_state(self, state: Mapping) -> None:
        self._mix.set_state(state["mixture"])
        self._pending = []
        for s, index, off in state["pending"]:
            ref, tokens, mask = self._mix.read((s, index))
            tokens, mask = self._fit(tokens, mask, count=False)
            self._pending.append((ref, tokens, mask, int(off)))
        self._pstats = {k: int(state["stats"].get(k, 0)) for k in _STAT_KEYS}
        self._done = bool(state["done"])

    # ------------------------------------------------------------------ batches

    def _fit(self, tokens, mask, count: bool = True):
        """Apply the best-fit length policy; returns (None, None) for a dropped document."""
        n, t = len(tokens), self._spec.seq_len
        if self._spec.mode != "best_fit" or n <= t:
            return tokens, mask
        if self._spec.long_examples == "truncate":
            if count:
                self._pstats["truncated_docs"] += 1
                self._pstats["truncated_tokens"] += n - t
            return tokens[:t], (None if mask is None else mask[:t])
        if count:
            self._pstats["dropped_docs"] += 1
            self._pstats["dropped_tokens"] += n
        return None, None

    def _draw(self):
        dropped = 0
        while True:
            item = self._mix.draw()
            if item is None:
                return None
            ref, tokens, mask = item
            if len(tokens) == 0:
                continue
            tokens, mask = self._fit(tokens, mask)
            if tokens is None:
                dropped += 1
                if dropped > self._mix.records_per_epoch:  # a whole epoch of some source
                    raise ValueError(
                        f"best_fit packing dropped {dropped} documents in a row: every document "
                        f"of source {self._mix.names[ref[0]]!r} is longer than seq_len="
                        f"{self._spec.seq_len}; raise seq_len, give the source weight 0 or set "
                        "long_examples='truncate'"
                    )
                continue
            self._pstats["docs"] += 1
            self._pstats["tokens_in"] += len(tokens)
            return ref, tokens, mask

    def _empty(self):
        b, t = self._spec.batch_size, self._spec.seq_len
        out = {
            "tokens": np.full((b, t), self._spec.pad_id, dtype=np.int32),
            "segment_ids": np.zeros((b, t), dtype=np.int32),
            "positions": np.zeros((b, t), dtype=np.int32),
            "loss_mask": np.zeros((b, t), dtype=np.int32),
        }
        if self._spec.emit_source_ids:
            out["source_ids"] = np.full((b, t), -1, dtype=np.int32)
        return out

    def _put(self, out, row, col, seg, ref, tokens, mask, start, take):
        end = col + take
        out["tokens"][row, col:end] = tokens[start:start + take]
        out["segment_ids"][row, col:end] = seg
        out["positions"][row, col:end] = self._arange[:take]
        if mask is None:
            out["loss_mask"][row, col:end] = 1
        else:
            out["loss_mask"][row, col:end] = mask[start:start + take]
        if "source_ids" in out:
            out["source_ids"][row, col:end] = ref[0]

    def _concat(self):
        b, t = self._spec.batch_size, self._spec.seq_len
        out = self._empty()
        row = col = 0
        seg = 1
        filled = 0
        while row < b:
            if not self._pending:
                item = self._draw()
                if item is None:
                    break
                self._pending.append((*item, 0))
            ref, tokens, mask, off = self._pending[0]
            take = min(t - col, len(tokens) - off)
            self._put(out, row, col, seg, ref, tokens, mask, off, take)
            filled += take
            off += take
            col += take
            if off == len(tokens):
                self._pending.clear()
            else:
                self._pending[0] = (ref, tokens, mask, off)
                self._pstats["split_docs"] += 1
            if col == t:
                row, col, seg = row + 1, 0, 1
            else:
                seg += 1
        return out, filled

    def _best_fit(self):
        b, t = self._spec.batch_size, self._spec.seq_len
        candidates = [(ref, tokens, mask) for ref, tokens, mask, _ in self._pending]
        total = sum(len(c[1]) for c in candidates)
        while total < b * t:
            item = self._draw()
            if item is None:
                break
            candidates.append(item)
            total += len(item[1])
        out = self._empty()
        remaining = np.full(b, t, dtype=np.int64)
        segments = np.zeros(b, dtype=np.int64)
        filled = 0
        order = sorted(range(len(candidates)), key=lambda i: -len(candidates[i][1]))
        placed = np.zeros(len(candidates), dtype=bool)
        for i in order:
            ref, tokens, mask = candidates[i]
            n = len(tokens)
            fits = np.where(remaining >= n, remaining, t + 1)
            row = int(np.argmin(fits))
            if fits[row] > t:
                continue
            segments[row] += 1
            self._put(out, row, t - int(remaining[row]), int(segments[row]), ref, tokens, mask,
                      0, n)
            remaining[row] -= n
            filled += n
            placed[i] = True
        self._pending = [(*candidates[i], 0) for i in range(len(candidates)) if not placed[i]]
        return out, filled

    def __next__(self) -> dict:
        if self._done:
            raise StopIteration
        out, filled = self._concat() if self._spec.mode == "concat" else self._best_fit()
        if filled == 0:
            self._done = True
            raise StopIteration
        size = self._spec.batch_size * self._spec.seq_len
        self._pstats["batches"] += 1
        self._pstats["tokens_out"] += filled
        self._pstats["padding"] += size - filled
        return out

    def __str__(self) -> str:
        return f"PackedBatchIterator({self._spec.mode})"


# ============================================================================ public iterator


@dataclasses.dataclass
class PipelineConfig:
    """Settings of the training input pipeline (see the module docstring)."""

    manifest: str  # manifest.json or the tokenized directory ("": in-memory sources given)
    batch_size: int  # global rows per batch (all hosts together)
    seq_len: int
    mixture: Any = "proportional"  # {name: weight} | "proportional" | "temperature" | "uniform"
    default_mixture: Any = None  # DataIterator.default_mixture (same forms); None: ``mixture``
    temperature: float = 3.0
    mixture_unit: str = "tokens"
    packing: str | None = None  # "concat" | "best_fit"; None: from the manifest kind
    long_examples: str = "drop"
    num_epochs: int | None = None
    seed: int = 0
    num_workers: int = 0
    worker_buffer_size: int = 2
    read_ahead: int = 128
    shard_index: int | None = None  # default: jax.process_index()
    shard_count: int | None = None  # default: jax.process_count()
    emit_source_ids: bool = False
    pad_id: int | None = None  # default: the tokenizer's pad id recorded in the manifest, or 0


def _walk_states(state: Any, key: str) -> Iterator[dict]:
    if isinstance(state, dict):
        if key in state:
            yield state
        for v in state.values():
            yield from _walk_states(v, key)
    elif isinstance(state, (list, tuple)):
        for v in state:
            yield from _walk_states(v, key)


class DataIterator(grain.DatasetIterator):
    """Host batches with checkpointable state and live mixture weights.

    ``next(it)`` -> dict of numpy ``[B_local, T]`` arrays. ``get_state()``/``set_state()``
    round-trip through JSON; being a Grain ``DatasetIterator``, it also checkpoints with
    Orbax through ``grain.checkpoint.CheckpointSave(it)`` / ``CheckpointRestore(it)``
    (one JSON file per process). ``set_mixture_weights({...})`` changes the mixture from the
    next batch on; ``default_mixture`` ({name: weight}) is the mixture of the configuration
    to return to (``it.set_mixture_weights(phase_mixture or it.default_mixture)``).
    ``packing_stats()`` and ``padding_fraction`` report what packing did.
    """

    def __init__(self, dataset: grain.IterDataset, names: Sequence[str], weights: Sequence[float],
                 config: PipelineConfig, default_mixture: Mapping[str, float] | None = None):
        it = iter(dataset)
        super().__init__(it)
        self._it = it
        self.source_names = list(names)
        self._weights = list(weights)
        self.default_mixture = dict(default_mixture or zip(names, weights))
        self.config = config
        self._real = 0
        self._total = 0

    def __next__(self) -> dict:
        batch = next(self._it)
        seg = batch["segment_ids"]
        self._real += int(np.count_nonzero(seg))
        self._total += seg.size
        return batch

    @property
    def padding_fraction(self) -> float:
        """Share of padding positions in the batches delivered so far by this iterator."""
        return 1.0 - self._real / self._total if self._total else 0.0

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict:
        return {"version": STATE_VERSION, "grain": copy.deepcopy(self._it.get_state())}

    def set_state(self, state: Mapping) -> None:
        if state.get("version") != STATE_VERSION or "grain" not in state:
            raise ValueError("not a eurollm_jax data iterator state (missing version/grain)")
        grain_state = copy.deepcopy(state["grain"])
        self._it.set_state(grain_state)
        mixtures = list(_walk_states(grain_state, MIXTURE_KEY))
        if mixtures:
            self._weights = list(mixtures[0]["weights"])

    # ------------------------------------------------------------------ mixture

    @property
    def mixture_weights(self) -> dict[str, float]:
        return dict(zip(self.source_names, self._weights))

    def set_mixture_weights(self, weights: Mapping[str, float], normalize: bool = True) -> None:
        """New mixture weights from the next batch on; sources left out get weight 0."""
        unknown = sorted(set(weights) - set(self.source_names))
        if unknown:
            raise MixtureError(f"unknown source(s) {unknown}; available: {self.source_names}")
        w = np.array([float(weights.get(n, 0.0)) for n in self.source_names])
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise MixtureError(f"weights must be finite, >= 0 and not all 0; got {dict(weights)}")
        if normalize:
            w = w / w.sum()
        state = self._it.get_state()
        mixtures = list(_walk_states(state, MIXTURE_KEY))
        if not mixtures:
            raise RuntimeError("no mixture state found in the Grain iterator state")
        for m in mixtures:
            m["weights"] = w.tolist()
            m["counts"] = [0] * len(w)
        self._it.set_state(state)
        self._weights = w.tolist()

    # ------------------------------------------------------------------ stats

    def packing_stats(self) -> dict:
        """Packing counters summed over workers (as of the batches delivered)."""
        totals = {k: 0 for k in _STAT_KEYS}
        for packer in _walk_states(self._it.get_state(), PACKER_KEY):
            for k in _STAT_KEYS:
                totals[k] += int(packer["stats"].get(k, 0))
        size = totals["tokens_out"] + totals["padding"]
        totals["padding_fraction"] = totals["padding"] / size if size else 0.0
        return totals

    def __enter__(self) -> "DataIterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _process_shard(config: PipelineConfig) -> tuple[int, int]:
    index, count = config.shard_index, config.shard_count
    if index is None or count is None:
        import jax

        index = jax.process_index() if index is None else index
        count = jax.process_count() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"shard_index {index} must be in [0, shard_count={count})")
    return index, count


def manifest_sources(manifest: Mapping) -> dict[str, ShardedRecords]:
    """The records of every source of a token manifest; fails if a listed shard is missing."""
    out = {}
    for name, entry in manifest["sources"].items():
        paths = [os.path.join(manifest["root"], p) for p in entry["shards"]]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"source {name!r}: shard(s) listed in the manifest are missing: {missing[:3]} "
                "(re-run the tokenization job into this directory)"
            )
        out[name] = ShardedRecords(paths, entry["shard_records"])
    return out


def describe_sources(sources: Mapping[str, InMemoryRecords], kind: str = "pretrain") -> dict:
    """The manifest-shaped summary of in-memory sources that ``resolve_weights`` reads
    (language: the part of the name before ``/``, or the whole name)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    table = {}
    for name, records in sorted(sources.items()):
        if not isinstance(records, InMemoryRecords):
            raise TypeError(
                f"source {name!r} is a {type(records).__name__}: in-memory sources are "
                "InMemoryRecords; read ArrayRecord shards through PipelineConfig.manifest"
            )
        table[name] = {"language": name.partition("/")[0], "records": len(records),
                       "tokens": records.num_tokens}
    return {"root": None, "kind": kind, "sources": table, "tokenizer": {}}


def build_dataset(
    config: PipelineConfig,
    sources: Mapping[str, InMemoryRecords] | None = None,
    *,
    kind: str = "pretrain",
) -> tuple[grain.IterDataset, list[str], list[float], dict[str, float]]:
    """The Grain dataset of host batches, the source names, the initial weights and the
    default mixture (``config.default_mixture`` resolved; the initial weights if None).

    The sources are those of the token manifest ``config.manifest``, or, given ``sources``
    (``{name: InMemoryRecords}``, documents of ``kind`` "pretrain" or "sft"), those; the
    manifest's kind, like ``kind``, picks the packing unless ``config.packing`` does.
    Validates everything up front: the manifest exists, mixture names exist, every shard of
    every source is on disk, the batch divides over hosts.
    """
    if sources is None:
        if not config.manifest:
            raise ValueError(
                "PipelineConfig.manifest is empty: give the directory written by "
                "`python -m launch.tokenize`, or pass in-memory sources to build_dataset"
            )
        table = load_manifest(config.manifest)
        records = manifest_sources(table)
    else:
        table = describe_sources(sources, kind)
        records = dict(sources)
    weights = resolve_weights(table, config.mixture, config.temperature)
    default = (weights if config.default_mixture is None
               else resolve_weights(table, config.default_mixture, config.temperature))
    names = list(weights)
    shard_index, shard_count = _process_shard(config)
    if config.batch_size % shard_count:
        raise ValueError(f"global batch_size {config.batch_size} does not divide over "
                         f"{shard_count} hosts")
    mode = config.packing or ("best_fit" if table.get("kind") == "sft" else "concat")
    pad_id = config.pad_id
    if pad_id is None:
        pad_id = table.get("tokenizer", {}).get("pad_id") or 0
    spec = PackingSpec(
        batch_size=config.batch_size // shard_count, seq_len=config.seq_len, mode=mode,
        pad_id=int(pad_id), long_examples=config.long_examples,
        emit_source_ids=config.emit_source_ids,
    )
    readers = shard_count * max(config.num_workers, 1)
    for name, w in weights.items():
        if w > 0 and len(records[name]) < readers:
            logging.warning(
                "source %s has %d records for %d readers (hosts x workers): %s", name,
                len(records[name]), readers, "each reader reads it whole"
                if config.num_epochs is None else "some readers get none of it",
            )
    ds = PackedBatchDataset(
        [records[n] for n in names], names, list(weights.values()), spec,
        unit=config.mixture_unit, seed=config.seed, num_epochs=config.num_epochs,
        shard_index=shard_index, shard_count=shard_count, read_ahead=config.read_ahead,
    )
    if config.num_workers > 0:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # Grain reads absl flags; outside an absl app
            flags.FLAGS.mark_as_parsed()  # (pytest, notebooks) keep their defaults
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(
            num_workers=config.num_workers, per_worker_buffer_size=config.worker_buffer_size))
    return ds, names, list(weights.values()), default


def make_iterator(
    config: PipelineConfig,
    sources: Mapping[str, InMemoryRecords] | None = None,
    *,
    kind: str = "pretrain",
) -> DataIterator:
    """Build the pipeline (see ``build_dataset``) and return its ``DataIterator``; fails at
    start on a bad config."""
    ds, names, weights, default = build_dataset(config, sources, kind=kind)
    return DataIterator(ds, names, weights, config, default)
