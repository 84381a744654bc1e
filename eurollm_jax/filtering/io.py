"""Reading and writing document shards: jsonl (plain, .gz, .zst) and parquet.

``read_documents(path)`` never raises on bad content: a malformed JSON line, invalid UTF-8, a
record without a string text field, an empty document, an over-long document or line, or an
unreadable/truncated file all come out as ``Document``s already marked dropped
(``input:<reason>``), so they are counted and written to the dropped output like any other
drop. Over-long records are truncated to ``keep_chars`` characters in the dropped output (with
``metadata["original_chars"]``/``["original_bytes"]``) so that one huge line cannot blow up
memory downstream.

``ShardWriter`` writes a shard atomically (``eurollm_jax.fileio.atomic_open``); gzip output is
byte-deterministic (mtime 0), so two runs of the same job produce identical files.
"""

from __future__ import annotations

import glob as _glob
import gzip
import io
import json
import os
from typing import Any, Iterator

from eurollm_jax.fileio import atomic_open
from eurollm_jax.filtering.core import Document

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst")
PARQUET_SUFFIXES = (".parquet",)
FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")


def expand_inputs(patterns: str | list[str]) -> list[str]:
    """Sorted, de-duplicated files matching one or more comma-separated globs."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    files: list[str] = []
    for pat in patterns:
        matches = sorted(_glob.glob(os.path.expanduser(pat.strip()), recursive=True))
        if not matches and os.path.isfile(pat):
            matches = [pat]
        files.extend(m for m in matches if os.path.isfile(m))
    files = sorted(dict.fromkeys(files))
    if not files:
        raise FileNotFoundError(f"no input files match {patterns!r}; pass --input=<glob> with "
                                "jsonl(.gz/.zst) or parquet shards")
    for f in files:
        if not f.endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES):
            raise ValueError(f"unsupported input file {f!r}: expected one of "
                             f"{JSONL_SUFFIXES + PARQUET_SUFFIXES}")
    return files


def shard_name(path: str) -> str:
    base = os.path.basename(path)
    for suf in sorted(JSONL_SUFFIXES + PARQUET_SUFFIXES, key=len, reverse=True):
        if base.endswith(suf):
            return base[: -len(suf)]
    return base


def _open_binary(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".zst"):
        import zstandard

        fh = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))
    return open(path, "rb")


def _bad(doc_id: str, reason: str, text: str, keep_chars: int, **meta) -> Document:
    meta = {k: v for k, v in meta.items() if v is not None}
    if len(text) > keep_chars:
        meta.setdefault("original_chars", len(text))
        text = text[:keep_chars]
    return Document(doc_id, text, meta).dropped("input", reason)


def _check_text(doc: Document, max_doc_chars: int, keep_chars: int) -> Document:
    if not doc.text.strip():
        return doc.dropped("input", "empty_document")
    if len(doc.text) > max_doc_chars:
        doc.metadata["original_chars"] = len(doc.text)
        doc.text = doc.text[:keep_chars]
        return doc.dropped("input", "document_too_large")
    return doc


def _has_lone_surrogate(record: dict) -> bool:
    """JSON can escape a lone UTF-16 surrogate that no UTF-8 writer (or fastText) accepts."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_documents(path: str, text_key: str = "text", id_key: str = "id",
                   max_doc_chars: int = 1_000_000, max_line_bytes: int = 16 << 20,
                   keep_chars: int = 10_000) -> Iterator[Document]:
    """Yields the documents of one shard (ids default to ``<shard>/<row>``), bad ones dropped."""
    name = shard_name(path)
    if path.endswith(PARQUET_SUFFIXES):
        yield from _read_parquet(path, name, text_key, id_key, max_doc_chars, keep_chars)
        return
    row = -1
    try:
        fh = _open_binary(path)
    except Exception as e:  # unreadable file: one dropped record says so
        yield _bad(f"{name}/file", "unreadable_shard", f"{type(e).__name__}: {e}", keep_chars)
        return
    with fh:
        while True:
            try:
                raw = fh.readline(max_line_bytes + 1)
            except Exception as e:  # truncated gzip/zstd stream, I/O error
                yield _bad(f"{name}/{row + 1}", "unreadable_shard_tail",
                           f"{type(e).__name__}: {e}", keep_chars)
                return
            if not raw:
                return
            row += 1
            default_id = f"{name}/{row}"
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                total = len(raw)
                try:  # skip the rest of the over-long line
                    while True:
                        more = fh.readline(max_line_bytes)
                        total += len(more)
                        if not more or more.endswith(b"\n"):
                            break
                except Exception:
                    pass
                yield _bad(default_id, "line_too_large", raw[:keep_chars].decode("utf-8", "replace"),
                           keep_chars, original_bytes=total)
                continue
            if not raw.strip():
                continue  # blank lines are not records
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield _bad(default_id, "invalid_utf8", raw.decode("utf-8", "replace"), keep_chars)
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                yield _bad(default_id, "malformed_json", line.rstrip("\n"), keep_chars)
                continue
            if not isinstance(record, dict):
                yield _bad(default_id, "malformed_json", line.rstrip("\n"), keep_chars)
                continue
            if "\\u" in line and _has_lone_surrogate(record):  # e.g. "\ud800": not encodable
                yield _bad(default_id, "invalid_utf8", line.rstrip("\n"), keep_chars)
                continue
            try:
                doc = Document.from_record(record, text_key, id_key, default_id)
            except ValueError:
                yield _bad(str(record.get(id_key, default_id)), "missing_text",
                           line.rstrip("\n"), keep_chars)
                continue
            yield _check_text(doc, max_doc_chars, keep_chars)


def _read_parquet(path, name, text_key, id_key, max_doc_chars, keep_chars):
    import pyarrow.parquet as pq

    row = -1
    try:
        pf = pq.ParquetFile(path)
        batches = pf.iter_batches(batch_size=1024)
    except Exception as e:
        yield _bad(f"{name}/file", "unreadable_shard", f"{type(e).__name__}: {e}", keep_chars)
        return
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:
            yield _bad(f"{name}/{row + 1}", "unreadable_shard_tail", f"{type(e).__name__}: {e}",
                       keep_chars)
            return
        for record in batch.to_pylist():
            row += 1
            default_id = f"{name}/{row}"
            if isinstance(record.get("metadata"), str):  # written by ShardWriter as JSON text
                try:
                    record["metadata"] = json.loads(record["metadata"])
                except ValueError:
                    pass
            try:
                doc = Document.from_record(record, text_key, id_key, default_id)
            except ValueError:
                yield _bad(str(record.get(id_key, default_id)), "missing_text",
                           json.dumps(record, default=str)[:keep_chars], keep_chars)
                continue
            yield _check_text(doc, max_doc_chars, keep_chars)


def output_suffix(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")
    return "." + fmt


class _Aborted(Exception):
    """Raised into ``atomic_open`` by ``ShardWriter.abort``: it deletes its temporary file."""


class ShardWriter:
    """Writes records to ``path`` atomically: nothing appears at ``path`` until ``close()``."""

    def __init__(self, path: str, fmt: str | None = None):
        self.path = path
        self.fmt = fmt or next((f for f in sorted(FORMATS, key=len, reverse=True)
                                if path.endswith("." + f)), "jsonl")
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
    """Reads back what ``ShardWriter`` wrote (jsonl variants or parquet)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        for r in pq.read_table(path).to_pylist():
            if isinstance(r.get("metadata"), str):
                r["metadata"] = json.loads(r["metadata"])
            yield r
        return
    with _open_binary(path) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
