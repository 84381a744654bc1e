"""HBO's data layout: subsets cut into difficulty buckets, each bucket one pipeline source.

A bucket is the pipeline source ``"<subset>/b<j>"`` (``j = 0`` the easiest): SFT records
carry it as their ``"source"`` key (``eurollm_jax.data.sft``), so the trainer's one data
path reads every bucket as its own mixture source and ``set_mixture_weights`` reaches it.
Text files may use ``"<subset>.b<j>"`` (a file stem cannot hold ``/``). A source name
without a bucket suffix is a subset of one bucket (global balancing of plain sources, e.g.
``data.source=text`` with one source per language).

``BucketLayout`` parses the iterator's source names into subsets and buckets;
``difficulty_buckets`` cuts scores into ``k`` equal-size buckets; ``SourceExamples`` holds
each source's training examples (``(tokens, loss_mask)``, exactly as the pipeline reads
them) and builds the reward batches (one example per row, the train step's batch schema).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

_BUCKET = re.compile(r"^(?P<subset>.+?)[./]b(?P<bucket>\d+)$")


class BucketLayoutError(ValueError):
    """Source names that do not form subsets with buckets 0..k-1."""


def bucket_source(subset: str, bucket: int, sep: str = "/") -> str:
    """The pipeline source name of bucket ``bucket`` of ``subset``."""
    if sep not in ("/", "."):
        raise ValueError(f"bucket separator must be '/' or '.', got {sep!r}")
    return f"{subset}{sep}b{int(bucket)}"


def parse_source(name: str) -> tuple[str, int | None]:
    """``"de/b2"`` -> ``("de", 2)``; a name without a bucket suffix -> ``(name, None)``."""
    m = _BUCKET.match(name)
    if m is None:
        return name, None
    return m.group("subset"), int(m.group("bucket"))


class BucketLayout:
    """Subsets (sorted) and their bucket sources, from the pipeline's source names."""

    def __init__(self, source_names: Sequence[str]):
        by_subset: dict[str, dict[int, str]] = {}
        plain = []
        for name in source_names:
            subset, bucket = parse_source(name)
            if bucket is None:
                plain.append(name)
                bucket = 0
            if bucket in by_subset.setdefault(subset, {}):
                raise BucketLayoutError(
                    f"sources {by_subset[subset][bucket]!r} and {name!r} are both bucket "
                    f"{bucket} of subset {subset!r}; name buckets '<subset>/b<j>' once each")
            by_subset[subset][bucket] = name
        for subset, buckets in by_subset.items():
            if sorted(buckets) != list(range(len(buckets))):
                raise BucketLayoutError(
                    f"subset {subset!r} has buckets {sorted(buckets)}; HBO needs buckets "
                    f"0..k-1 (sources '{subset}/b0', '{subset}/b1', ...)")
            if len(buckets) > 1 and any(buckets[b] in plain for b in buckets):
                raise BucketLayoutError(
                    f"subset {subset!r} mixes a plain source with bucket sources: "
                    f"{sorted(buckets.values())}")
        self.subsets = sorted(by_subset)
        self.sources = {s: [by_subset[s][b] for b in range(len(by_subset[s]))]
                        for s in self.subsets}

    def buckets(self, subset: str) -> list[str]:
        return list(self.sources[subset])

    @property
    def all_sources(self) -> list[str]:
        return [name for s in self.subsets for name in self.sources[s]]


def difficulty_buckets(scores: Sequence[float], k: int) -> list[np.ndarray]:
    """Indices of ``scores`` cut into ``k`` equal-size buckets, easiest (lowest) first;
    ties keep input order; sizes differ by at most one (the larger buckets first)."""
    scores = np.asarray(scores, np.float64)
    if k < 1:
        raise ValueError(f"hbo.buckets must be >= 1, got {k}")
    if len(scores) < k:
        raise ValueError(f"{len(scores)} examples cannot fill {k} buckets; use fewer buckets")
    if not np.all(np.isfinite(scores)):
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"difficulty score of example {bad} is {scores[bad]}: scores must be "
                         "finite (check the reference model and the example)")
    order = np.argsort(scores, kind="stable")
    return [np.asarray(part) for part in np.array_split(order, k)]


class SourceExamples:
    """The training examples of every source: ``{name: [(tokens, loss_mask), ...]}``."""

    def __init__(self, named: Mapping[str, Sequence]):
        self.examples: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for name, docs in named.items():
            out = []
            for d in docs:
                if isinstance(d, tuple):
                    tokens, mask = np.asarray(d[0], np.int32), np.asarray(d[1], np.int32)
                else:
                    tokens = np.asarray(d, np.int32)
                    mask = np.ones_like(tokens)
                out.append((tokens, mask))
            self.examples[name] = out

    def __len__(self) -> int:
        return sum(len(v) for v in self.examples.values())

    def count(self, name: str) -> int:
        return len(self.examples[name])

    def mean_tokens(self, name: str) -> float:
        return float(np.mean([len(t) for t, _ in self.examples[name]]))

    def get(self, name: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.examples[name][index]


def example_targets(tokens: np.ndarray, mask: np.ndarray, seq_len: int) -> int:
    """Training targets of an example in a row of ``seq_len`` (token 0 is never one)."""
    return int(np.asarray(mask[1:seq_len]).sum())


def rows_batch(examples: Sequence[tuple[np.ndarray, np.ndarray]], rows: int,
               seq_len: int) -> dict[str, np.ndarray]:
    """One example per row (truncated to ``seq_len``), padded to ``rows`` rows: the train
    step's batch schema (``tokens, segment_ids, positions, loss_mask``); padding rows and
    positions have segment 0 and carry no loss."""
    if len(examples) > rows:
        raise ValueError(f"{len(examples)} examples do not fit {rows} rows")
    batch = {k: np.zeros((rows, seq_len), np.int32)
             for k in ("tokens", "segment_ids", "positions", "loss_mask")}
    for r, (tokens, mask) in enumerate(examples):
        n = min(len(tokens), seq_len)
        batch["tokens"][r, :n] = tokens[:n]
        batch["segment_ids"][r, :n] = 1
        batch["positions"][r, :n] = np.arange(n)
        batch["loss_mask"][r, :n] = mask[:n]
    return batch
