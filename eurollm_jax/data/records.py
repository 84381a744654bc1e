"""Token records in ArrayRecord shards: the on-disk format and fast batched readers.

One record = one document, a little-endian int32 array ``[kind, ...]``:

- ``kind == 0`` (pre-training): ``[0, t_0, ..., t_{n-1}]``, every token is a target.
- ``kind == 1`` (SFT): ``[1, t_0, ..., t_{n-1}, m_0, ..., m_{n-1}]`` with the loss mask ``m``.

Shards are written with ``group_size:1`` (random access to single records) and no
compression by default. ``ShardedRecords`` joins the shards of one source under one index
space and reads many records per call (ArrayRecord's batched ``read(indices)`` is ~25x faster
per record than one call per record); readers open lazily so the object pickles into workers.
``InMemoryRecords`` holds documents in memory behind the same interface (``len()``,
``read(indices)`` -> encoded records), so the pipeline reads in-memory corpora (synthetic,
byte-level text, SFT conversations built by the trainer) exactly as it reads shards.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

KIND_TOKENS, KIND_MASKED = 0, 1
DEFAULT_WRITER_OPTIONS = "group_size:1,uncompressed"


def encode_record(tokens: Sequence[int] | np.ndarray, loss_mask=None) -> bytes:
    tokens = np.asarray(tokens, dtype="<i4")
    if loss_mask is None:
        return np.concatenate([np.array([KIND_TOKENS], "<i4"), tokens]).tobytes()
    mask = np.asarray(loss_mask, dtype="<i4")
    if mask.shape != tokens.shape:
        raise ValueError(f"loss mask shape {mask.shape} != tokens shape {tokens.shape}")
    return np.concatenate([np.array([KIND_MASKED], "<i4"), tokens, mask]).tobytes()


def decode_record(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """(tokens int32 [n], loss_mask int32 [n] or None)."""
    arr = np.frombuffer(data, dtype="<i4")
    if arr.size == 0:
        raise ValueError("empty record: not written by eurollm_jax.data.records")
    if arr[0] == KIND_TOKENS:
        return arr[1:], None
    if arr[0] == KIND_MASKED:
        n = (arr.size - 1) // 2
        return arr[1:1 + n], arr[1 + n:]
    raise ValueError(f"unknown record kind {int(arr[0])}")


class RecordWriter:
    """Writes records to ``path`` via a temporary name; ``close()`` renames it into place."""

    def __init__(self, path: str, options: str = DEFAULT_WRITER_OPTIONS):
        from array_record.python.array_record_module import ArrayRecordWriter

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._tmp = path + ".incomplete"
        self._writer = ArrayRecordWriter(self._tmp, options)
        self.records = 0
        self.tokens = 0

    def write(self, tokens, loss_mask=None) -> None:
        self._writer.write(encode_record(tokens, loss_mask))
        self.records += 1
        self.tokens += len(tokens)

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


class ShardedRecords:
    """Random access over the records of several ArrayRecord shards (one index space)."""

    def __init__(self, paths: Sequence[str], num_records: Sequence[int] | None = None):
        self.paths = [str(p) for p in paths]
        if num_records is None:
            from array_record.python.array_record_module import ArrayRecordReader

            num_records = []
            for p in self.paths:
                r = ArrayRecordReader(p)
                num_records.append(r.num_records())
                r.close()
        self.num_records = [int(n) for n in num_records]
        self._starts = np.concatenate([[0], np.cumsum(self.num_records)]).astype(np.int64)
        self._readers: list | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self):
        return {"paths": self.paths, "num_records": self.num_records}

    def __setstate__(self, state):
        self.__init__(state["paths"], state["num_records"])

    def _open(self):
        from array_record.python.array_record_module import ArrayRecordReader

        missing = [p for p in self.paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(f"ArrayRecord shard(s) missing: {missing[:3]}")
        self._readers = [ArrayRecordReader(p, "readahead_buffer_size:0") for p in self.paths]

    def read(self, indices: Sequence[int]) -> list[bytes]:
        """Records at global ``indices`` (in that order), batched per shard."""
        if self._readers is None:
            self._open()
        if len(self.paths) == 1:
            return list(self._readers[0].read([int(i) for i in indices]))
        idx = np.asarray(indices, dtype=np.int64)
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        out: list = [None] * len(idx)
        for s in np.unique(shard):
            where = np.nonzero(shard == s)[0]
            local = (idx[where] - self._starts[s]).tolist()
            for w, rec in zip(where.tolist(), self._readers[s].read(local)):
                out[w] = rec
        return out

    def __getitem__(self, index: int) -> bytes:
        return self.read([index])[0]

    def close(self) -> None:
        if self._readers:
            for r in self._readers:
                r.close()
        self._readers = None


class InMemoryRecords:
    """Documents held in memory, read like ``ShardedRecords`` (the same encoded records).

    ``docs``: token arrays, or ``(tokens, loss_mask)`` pairs (``loss_mask`` None for
    pre-training). ``num_tokens`` is the corpus size the mixture's proportional and
    temperature weights use (a token manifest records it for shards).
    """

    def __init__(self, docs: Iterable):
        self._records: list[bytes] = []
        self.num_tokens = 0
        for doc in docs:
            tokens, mask = doc if isinstance(doc, tuple) else (doc, None)
            self._records.append(encode_record(tokens, mask))
            self.num_tokens += len(tokens)

    def __len__(self) -> int:
        return len(self._records)

    def read(self, indices: Sequence[int]) -> list[bytes]:
        """Records at ``indices`` (in that order)."""
        return [self._records[int(i)] for i in indices]

    def __getitem__(self, index: int) -> bytes:
        return self._records[int(index)]

    def close(self) -> None:
        """Nothing to release (the interface of ``ShardedRecords``)."""
