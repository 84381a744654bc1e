"""Writing document shards (jsonl, .jsonl.gz, .jsonl.zst, parquet) and reading them back raw.

``ShardWriter`` writes records (``Document.to_record()`` dicts, or any JSON-able dicts) to one
shard atomically (``eurollm_jax.fileio.atomic_open``): nothing appears under the final name until
``close()``. gzip output is byte-deterministic (mtime 0), so two runs of the same job produce
identical files. Parquet stores ``metadata`` as a JSON string column, which the reader
(``reader.py``) decodes. Everything written here is an input ``iter_documents`` and
``read_documents`` accept. ``read_records`` reads a shard written here back as plain dicts
(trusted intermediate files; untrusted input goes through the reader).
"""

from __future__ import annotations

import gzip
import json
from typing import Any, Iterator

from eurollm_jax.documents.reader import open_binary
from eurollm_jax.fileio import atomic_open

FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")


def output_suffix(fmt: str) -> str:
    """``".jsonl.gz"`` for ``"jsonl.gz"``; ``ValueError`` naming the formats otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")
    return "." + fmt


class _Aborted(Exception):
    """Raised into ``atomic_open`` by ``ShardWriter.abort``: it deletes its temporary file."""


class ShardWriter:
    """Writes records to ``path`` atomically: nothing appears at ``path`` until ``close()``.

    ``fmt`` defaults to the format named by the path's suffix (plain jsonl otherwise).
    """

    def __init__(self, path: str, fmt: str | None = None):
        self.path = path
        self.fmt = fmt or next((f for f in sorted(FORMATS, key=len, reverse=True)
                                if path.endswith("." + f)), "jsonl")
        output_suffix(self.fmt)
        self._file = atomic_open(path, "wb")
        self._raw = self._file.__enter__()
        self._rows: list[dict] = []
        self.count = 0
        if self.fmt == "parquet":
            self._fh = None
        elif self.fmt == "jsonl.gz":
            self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        elif self.fmt == "jsonl.zst":
            import zstandard

            self._fh = zstandard.ZstdCompressor().stream_writer(self._raw, closefd=False)
        else:
            self._fh = self._raw

    def write(self, record: dict[str, Any]) -> None:
        self.count += 1
        if self._fh is None:
            self._rows.append(record)
            return
        self._fh.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")

    def close(self) -> None:
        if self._fh is None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            rows = [dict(r, metadata=json.dumps(r.get("metadata", {}), ensure_ascii=False))
                    for r in self._rows]
            table = pa.Table.from_pylist(rows) if rows else pa.table(
                {"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
            pq.write_table(table, self._raw)
        elif self._fh is not self._raw:
            self._fh.close()  # the compressor's trailer; the file itself stays open
        self._file.__exit__(None, None, None)  # fsync, rename onto ``path``

    def abort(self) -> None:
        try:
            if self._fh is not None and self._fh is not self._raw:
                self._fh.close()
        finally:  # closes and deletes the temporary file
            self._file.__exit__(_Aborted, _Aborted(), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_records(path: str) -> Iterator[dict[str, Any]]:
    """Reads back what ``ShardWriter`` wrote (jsonl variants or parquet) as dicts."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        for r in pq.read_table(path).to_pylist():
            if isinstance(r.get("metadata"), str):
                r["metadata"] = json.loads(r["metadata"])
            yield r
        return
    with open_binary(path) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
