"""Reading documents: the input formats, one parser from record to ``Document``, bad-input
accounting. Filtering, tokenizer training and tokenization all read through here.

Inputs (``input_format``; ``expand_inputs`` turns comma-separated globs into a list of them):

- ``path.jsonl`` / ``path.json``, plain or ``.gz`` / ``.zst`` compressed: one JSON object per
  line; blank lines are not records; a UTF-8 byte order mark on the first line is tolerated.
- ``path.parquet``: one row per record, read in record batches (pyarrow). A string
  ``metadata`` column (how ``ShardWriter`` stores it) is decoded from JSON.
- ``tfds:NAME[/CONFIG][:SPLIT]``: a prepared TFDS dataset, read with ``tfds.data_source``
  (random access, no TensorFlow); ``ReaderConfig.tfds_data_dir`` for local data.

``ReaderConfig`` (the reader's options: one ``eurollm_jax.schema.Section``, which the jobs'
typed configs embed rather than copy) says how a record becomes a ``Document``: the text
field (or, for ``kind="sft"``, a ``messages`` list of ``{"role", "content"}`` strings), the
id (default ``<stem>/<row>``, ``row`` 0-based over all lines), the declared language and
source (a plain name is also looked up in the record's ``metadata``, where the filter keeps
original fields; ``lang_field=None`` reads no language) and every other field into
``metadata``.

Two ways to read, one parser:

- ``iter_documents(spec, config, report)``: the good documents only. Every problem is counted in
  ``report`` (``BadInputReport``: per file and reason, with examples and their line: the 1-based
  line of a JSONL file, the 0-based row of Parquet/TFDS) and reading goes on. An input that
  cannot be read to its end (corrupt, truncated) raises ``UnreadableInputError``, so that a
  job can report it as failed rather than silently keep half of it.
- ``read_documents(spec, config, report)``: every record in input order, never raising on
  content; a bad record comes out as a ``Document`` already marked dropped ``input:<code>``
  (the filtering stage writes it to its dropped output like any other drop). Over-long records
  are truncated to ``keep_chars`` there, with ``metadata["original_chars"]`` /
  ``["original_bytes"]``, so that one huge line cannot blow up memory downstream.

Problems: ``code`` (the drop reason) -> message in the ``BadInputReport``:

    malformed_json          malformed JSON (<parser message>) | not a JSON object
    invalid_utf8            invalid UTF-8 (byte N) | invalid UTF-8 (lone surrogate escape)
    line_too_large          line longer than N bytes              (ReaderConfig.max_line_bytes)
    missing_text            missing text field 'F' | text field 'F' is not a string
    empty_document          empty text                             (nothing but whitespace)
    document_too_large      text longer than N characters         (ReaderConfig.max_doc_chars)
    missing_language        missing language field 'F'
    missing_messages        missing messages field 'F' | messages must be {role, content} ...
    unreadable_shard        unreadable file (<error>)              input cannot be opened
    unreadable_shard_tail   unreadable after N records (<error>)   e.g. a truncated .gz
    empty_file              empty file                             (no record, no document)

Neither reader resumes inside an input; the jobs resume per input (filtering per shard,
tokenization per input marker).
"""

from __future__ import annotations

import dataclasses
import glob as _glob
import gzip
import io
import json
import os
from typing import Any, Iterable, Iterator

from eurollm_jax.documents.document import DROP_REASON, Document
from eurollm_jax.schema import Section

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst")
PARQUET_SUFFIXES = (".parquet",)
FILE_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES
TFDS_PREFIX = "tfds:"
KINDS = ("pretrain", "sft")
_FORMS = ".jsonl/.json (plain, .gz or .zst), .parquet or tfds:NAME[/CONFIG][:SPLIT]"


class UnreadableInputError(OSError):
    """An input exists but cannot be read to its end (corrupt or truncated file)."""


# ---------------------------------------------------------------- inputs


def input_format(spec: str) -> str:
    """``"jsonl"``, ``"parquet"`` or ``"tfds"``; ``ValueError`` for anything else."""
    if spec.startswith(TFDS_PREFIX):
        return "tfds"
    if spec.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if spec.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise ValueError(f"unsupported input {spec!r}: unknown format; use {_FORMS}")


def input_stem(spec: str) -> str:
    """A short name for an input: the file name without its format suffix, or the TFDS name
    (``tfds:jsonl_corpus/demo:train`` -> ``jsonl_corpus_demo_train``)."""
    if spec.startswith(TFDS_PREFIX):
        return spec[len(TFDS_PREFIX):].replace("/", "_").replace(":", "_")
    base = os.path.basename(spec)
    for suffix in sorted(FILE_SUFFIXES, key=len, reverse=True):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def expand_inputs(patterns: str | Iterable[str], tfds: bool = True) -> list[str]:
    """Input specs from files, globs (``**`` recursive) and ``tfds:`` specs (a list, or one
    comma-separated string): the files sorted and de-duplicated, then the TFDS specs in order.

    Every glob must match a file and every file must have a known format; ``tfds=False``
    refuses TFDS specs (for jobs that read files only).
    """
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    patterns = [p.strip() for p in patterns if p.strip()]
    if not patterns:
        raise FileNotFoundError(f"no inputs given: pass files or globs of {_FORMS}")
    files: list[str] = []
    datasets: list[str] = []
    for pat in patterns:
        if pat.startswith(TFDS_PREFIX):
            if not tfds:
                raise ValueError(f"input {pat!r}: this job reads files only, not TFDS datasets; "
                                 "export the split to JSONL or Parquet first")
            parse_tfds_spec(pat)
            datasets.append(pat)
            continue
        matches = sorted(_glob.glob(os.path.expanduser(pat), recursive=True))
        if not matches and os.path.isfile(pat):  # a file name with glob characters in it
            matches = [pat]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            raise FileNotFoundError(f"no input files match {pat!r}: pass existing files or globs "
                                    f"of {_FORMS}")
        files.extend(matches)
    files = sorted(dict.fromkeys(files))
    for f in files:
        input_format(f)
    return files + list(dict.fromkeys(datasets))


class _ZstdReader(io.RawIOBase):
    """A ``.zst`` file decompressed frame after frame. A file that ends inside a frame raises
    ``EOFError`` (as gzip does): zstandard's own ``stream_reader`` ends quietly there, which
    would turn a truncated shard into silently missing documents."""

    _CHUNK = 1 << 18

    def __init__(self, path: str):
        import zstandard

        super().__init__()
        self._fh = open(path, "rb")
        self._path = path
        self._new_frame = zstandard.ZstdDecompressor().decompressobj
        self._frame = None  # the decompressor of the frame being read; None between frames
        self._out, self._pos = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._pos >= len(self._out):
            chunk = self._fh.read(self._CHUNK)
            if not chunk:
                if self._frame is not None:
                    raise EOFError(f"{self._path} ends inside a zstd frame (truncated file)")
                return 0
            out = []
            while chunk:
                if self._frame is None:
                    self._frame = self._new_frame()
                out.append(self._frame.decompress(chunk))
                chunk = b""
                if self._frame.eof:  # next frame, if any, starts in the unused bytes
                    chunk, self._frame = self._frame.unused_data, None
            self._out, self._pos = b"".join(out), 0
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_binary(path: str):
    """A binary file object over ``path``, decompressing ``.gz`` and ``.zst``; reading a
    truncated compressed file raises (``EOFError``) instead of ending early."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".zst"):
        return io.BufferedReader(_ZstdReader(path), buffer_size=1 << 20)
    return open(path, "rb")


def parse_tfds_spec(spec: str) -> tuple[str, str]:
    """``tfds:NAME[/CONFIG][:SPLIT]`` -> (name, split); split defaults to ``train``."""
    body = spec[len(TFDS_PREFIX):]
    name, _, split = body.partition(":")
    if not name:
        raise ValueError(f"bad TFDS input {spec!r}: expected tfds:NAME[/CONFIG][:SPLIT]")
    return name, split or "train"


def tfds_data_source(name: str, split: str = "train", data_dir: str | None = None):
    """``tfds.data_source``, falling back to the prepared files under ``data_dir``.

    Datasets whose builder config is not registered in this process (e.g. a
    ``jsonl_corpus/<name>`` prepared earlier) are opened with ``builder_from_directory``.
    """
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as first_error:  # noqa: BLE001 (tfds raises several types)
        if data_dir is None:
            raise
        base = os.path.join(data_dir, *name.split("/"))
        versions = sorted(
            (d for d in (os.listdir(base) if os.path.isdir(base) else [])
             if d[:1].isdigit() and os.path.isdir(os.path.join(base, d))),
            key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()),
        )
        if not versions:
            raise FileNotFoundError(
                f"TFDS dataset {name!r} is neither registered nor prepared under {data_dir!r}"
            ) from first_error
        builder = tfds.builder_from_directory(os.path.join(base, versions[-1]))
        return builder.as_data_source(split=split)


# ---------------------------------------------------------------- options and accounting


@dataclasses.dataclass(frozen=True)
class ReaderConfig(Section):
    """How records become documents (see the module docstring): the reader's options, one
    typed ``Section`` that every job reading documents reuses (the tokenization job's
    ``reader`` section, the filter's ``input`` section with its own limits). The limits are
    off (``None``) by default."""

    text_field: str = "text"
    id_field: str = "id"
    lang_field: str | None = "lang"  # None: read no language (Document.lang = default_lang)
    source_field: str | None = "source"
    messages_field: str = "messages"
    kind: str = "pretrain"  # "pretrain" (text) or "sft" (messages)
    default_lang: str | None = None  # None: a record without a language is bad input
    default_source: str | None = None  # None: the input's stem
    tfds_data_dir: str | None = None
    max_doc_chars: int | None = None  # longer texts are bad input (document_too_large)
    max_line_bytes: int | None = None  # longer JSONL lines are bad input (line_too_large)
    keep_chars: int = 10_000  # text kept of a bad record in read_documents' dropped documents

    def __post_init__(self):  # also when built directly, not only through from_mapping
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'pretrain' or 'sft', got {self.kind!r}")

    def check(self, path):
        for name in ("text_field", "id_field", "messages_field"):
            self.require(path, bool(getattr(self, name)), name, "must name a record field")
        for name in ("max_doc_chars", "max_line_bytes"):
            value = getattr(self, name)
            self.require(path, value is None or value > 0, name,
                         f"must be positive (or None: no limit), got {value}")
        self.require(path, self.keep_chars >= 0, "keep_chars", "must be >= 0")


@dataclasses.dataclass
class BadInputReport:
    """Problems found while reading, per file: counts by reason and examples with lines."""

    max_examples: int = 100
    files: dict = dataclasses.field(default_factory=dict)

    def add(self, path: str, line: int | None, reason: str) -> None:
        entry = self.files.setdefault(path, {"counts": {}, "examples": []})
        entry["counts"][reason] = entry["counts"].get(reason, 0) + 1
        if len(entry["examples"]) < self.max_examples:
            entry["examples"].append({"line": line, "reason": reason})

    @property
    def total(self) -> int:
        return sum(sum(e["counts"].values()) for e in self.files.values())

    def merge(self, other: "BadInputReport | dict") -> None:
        files = other.files if isinstance(other, BadInputReport) else other
        for path, entry in files.items():
            mine = self.files.setdefault(path, {"counts": {}, "examples": []})
            for reason, n in entry["counts"].items():
                mine["counts"][reason] = mine["counts"].get(reason, 0) + n
            room = self.max_examples - len(mine["examples"])
            mine["examples"].extend(entry["examples"][: max(room, 0)])

    def to_dict(self) -> dict:
        return {"total": self.total, "files": self.files}

    def summary(self) -> str:
        if not self.files:
            return "bad input: none"
        lines = [f"bad input: {self.total} problem(s) in {len(self.files)} file(s)"]
        for path, entry in sorted(self.files.items()):
            counts = ", ".join(f"{r}: {n}" for r, n in sorted(entry["counts"].items()))
            where = ", ".join(
                f"line {e['line']} ({e['reason']})" for e in entry["examples"][:5]
                if e["line"] is not None
            )
            lines.append(f"  {path}: {counts}" + (f"; e.g. {where}" if where else ""))
        return "\n".join(lines)


def record_field(record: dict, name: str, default=None):
    """``record[name]``; a dotted name walks nested objects ("metadata.lang"), and a plain
    name missing at the top level is looked up in ``record["metadata"]``, where the
    filtering stage (``launch.filter``) keeps a document's original fields."""
    if "." in name:
        value: Any = record
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value
    if name in record:
        return record[name]
    metadata = record.get("metadata")
    if isinstance(metadata, dict) and name in metadata:
        return metadata[name]
    return default


# ---------------------------------------------------------------- the parser


@dataclasses.dataclass
class _Problem:
    code: str
    message: str
    line: int | None
    doc: Document | None  # the record as a dropped document; None when there is no record
    fatal: bool = False  # reading stopped here: the rest of the input is lost


def _decoded(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _has_lone_surrogate(record: dict) -> bool:
    """JSON can escape a lone UTF-16 surrogate that no UTF-8 writer (or fastText) accepts."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _is_turn(m) -> bool:
    return (isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str))


class _Parser:
    """Turns one input's records into documents or problems (shared by every format)."""

    def __init__(self, spec: str, config: ReaderConfig):
        self.spec, self.config, self.stem = spec, config, input_stem(spec)

    def bad(self, code: str, message: str, line: int | None, doc_id: str, text: str,
            **meta) -> _Problem:
        meta = {k: v for k, v in meta.items() if v is not None}
        if len(text) > self.config.keep_chars:
            meta.setdefault("original_chars", len(text))
            text = text[: self.config.keep_chars]
        return _Problem(code, message, line, Document(doc_id, text, meta, line=line).dropped(
            "input", code))

    def unreadable(self, rows_read: int | None, line: int | None, error: Exception) -> _Problem:
        """The input could not be opened (``rows_read=None``) or read past ``rows_read``."""
        detail = f"{type(error).__name__}: {error}"
        if rows_read is None:
            p = self.bad("unreadable_shard", f"unreadable file ({detail})", None,
                         f"{self.stem}/file", detail)
        else:
            p = self.bad("unreadable_shard_tail", f"unreadable after {rows_read} records "
                         f"({detail})", line, f"{self.stem}/{rows_read}", detail)
        p.fatal = True
        return p

    def empty(self) -> _Problem:
        return _Problem("empty_file", "empty file", None, None)

    def document(self, record: Any, row: int, line: int, raw: str | None) -> Document | _Problem:
        """``record`` (parsed; ``raw`` its JSON line, None for Parquet/TFDS rows) as a
        document, or the problem that stops it from being one."""
        c = self.config
        default_id = f"{self.stem}/{row}"

        def bad(code, message, doc_id=default_id):
            text = raw if raw is not None else json.dumps(record, default=str)
            return self.bad(code, message, line, doc_id, text)

        if not isinstance(record, dict):
            return bad("malformed_json", "not a JSON object")
        doc_id = _decoded(record.get(c.id_field))
        doc_id = default_id if doc_id is None else str(doc_id)
        lang = c.default_lang
        if c.lang_field is not None:
            lang = _decoded(record_field(record, c.lang_field, c.default_lang))
            if not isinstance(lang, str) or not lang:
                return bad("missing_language", f"missing language field {c.lang_field!r}", doc_id)
        source = _decoded(record_field(record, c.source_field)) if c.source_field else None
        source = str(source or c.default_source or self.stem)
        consumed = {c.id_field, "metadata", DROP_REASON}
        text, messages = None, None
        if c.kind == "sft":
            messages = record.get(c.messages_field)
            if not isinstance(messages, list) or not messages:
                return bad("missing_messages", f"missing messages field {c.messages_field!r}",
                           doc_id)
            if not all(_is_turn(m) for m in messages):
                return bad("missing_messages", "messages must be {role, content} string pairs",
                           doc_id)
            consumed.add(c.messages_field)
        else:
            if c.text_field not in record:
                return bad("missing_text", f"missing text field {c.text_field!r}", doc_id)
            text = record[c.text_field]
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError as e:
                    return bad("invalid_utf8", f"invalid UTF-8 (byte {e.start})", doc_id)
            if not isinstance(text, str):
                return bad("missing_text", f"text field {c.text_field!r} is not a string", doc_id)
            consumed.add(c.text_field)
        meta = dict(record["metadata"]) if isinstance(record.get("metadata"), dict) else {}
        for k, v in record.items():
            if k not in consumed:
                meta[k] = v
        doc = Document(doc_id, text, meta, messages, lang, source, line)
        if text is None:
            return doc
        if not text.strip():
            return _Problem("empty_document", "empty text", line,
                            doc.dropped("input", "empty_document"))
        if c.max_doc_chars is not None and len(text) > c.max_doc_chars:
            doc.metadata["original_chars"] = len(text)
            doc.text = text[: c.keep_chars]
            return _Problem("document_too_large", f"text longer than {c.max_doc_chars} "
                            "characters", line, doc.dropped("input", "document_too_large"))
        return doc


def _jsonl(p: _Parser) -> Iterator[Document | _Problem]:
    limit, keep = p.config.max_line_bytes, p.config.keep_chars
    row = -1
    try:
        fh = open_binary(p.spec)
    except Exception as e:  # noqa: BLE001 (permissions, a broken link, ...)
        yield p.unreadable(None, None, e)
        return
    with fh:
        while True:
            try:
                raw = fh.readline(limit + 1) if limit else fh.readline()
            except Exception as e:  # noqa: BLE001 (truncated gzip/zstd stream, I/O error)
                yield p.unreadable(row + 1, row + 2, e)
                return
            if not raw:
                break
            row += 1
            line_no = row + 1
            default_id = f"{p.stem}/{row}"
            if limit and len(raw) > limit and not raw.endswith(b"\n"):
                total = len(raw)
                try:  # skip the rest of the over-long line
                    while True:
                        more = fh.readline(limit)
                        total += len(more)
                        if not more or more.endswith(b"\n"):
                            break
                except Exception:  # noqa: BLE001 (the next read reports it)
                    pass
                yield p.bad("line_too_large", f"line longer than {limit} bytes", line_no,
                            default_id, raw[:keep].decode("utf-8", "replace"),
                            original_bytes=total)
                continue
            if not raw.strip():
                continue  # blank lines are not records
            try:
                line = raw.decode("utf-8-sig" if row == 0 else "utf-8")  # tolerate a BOM
            except UnicodeDecodeError as e:
                yield p.bad("invalid_utf8", f"invalid UTF-8 (byte {e.start})", line_no,
                            default_id, raw.decode("utf-8", "replace"))
                continue
            text = line.rstrip("\n")
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as e:
                why = e.msg if isinstance(e, json.JSONDecodeError) else (
                    "nested too deeply" if isinstance(e, RecursionError) else str(e))
                yield p.bad("malformed_json", f"malformed JSON ({why})", line_no, default_id, text)
                continue
            if isinstance(record, dict) and "\\u" in line and _has_lone_surrogate(record):
                yield p.bad("invalid_utf8", "invalid UTF-8 (lone surrogate escape)", line_no,
                            default_id, text)
                continue
            yield p.document(record, row, line_no, text)
    if row < 0:
        yield p.empty()


def _parquet(p: _Parser) -> Iterator[Document | _Problem]:
    import pyarrow.parquet as pq

    row = -1
    try:
        batches = pq.ParquetFile(p.spec).iter_batches(batch_size=1024)
    except Exception as e:  # noqa: BLE001 (pyarrow raises several types for corrupt files)
        yield p.unreadable(None, None, e)
        return
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except Exception as e:  # noqa: BLE001
            yield p.unreadable(row + 1, row + 1, e)
            return
        for record in batch.to_pylist():
            row += 1
            if isinstance(record.get("metadata"), str):  # written by ShardWriter as JSON text
                try:
                    record["metadata"] = json.loads(record["metadata"])
                except ValueError:
                    pass
            yield p.document(record, row, row, None)
    if row < 0:
        yield p.empty()


def _tfds(p: _Parser) -> Iterator[Document | _Problem]:
    name, split = parse_tfds_spec(p.spec)
    source = tfds_data_source(name, split, p.config.tfds_data_dir)
    n = len(source)
    if n == 0:
        yield p.empty()
        return
    for start in range(0, n, 1024):
        records = source.__getitems__(list(range(start, min(n, start + 1024))))
        for i, record in enumerate(records):
            yield p.document(dict(record), start + i, start + i, None)


_FORMATS = {"jsonl": _jsonl, "parquet": _parquet, "tfds": _tfds}


def _read(spec: str, config: ReaderConfig | None) -> Iterator[Document | _Problem]:
    fmt = input_format(spec)
    if fmt != "tfds" and not os.path.exists(spec):
        raise FileNotFoundError(f"input {spec!r} does not exist")
    return _FORMATS[fmt](_Parser(spec, config or ReaderConfig()))


# ---------------------------------------------------------------- the two ways to read


def iter_documents(spec: str, config: ReaderConfig | None = None,
                   report: BadInputReport | None = None) -> Iterator[Document]:
    """The good documents of one input; problems counted in ``report`` (module docstring).

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for an unknown format and
    ``UnreadableInputError`` when the input cannot be read to its end.
    """
    report = report if report is not None else BadInputReport()
    for item in _read(spec, config):
        if isinstance(item, Document):
            yield item
        elif item.fatal:
            raise UnreadableInputError(
                f"input {spec!r} cannot be read to its end: {item.message}; re-create the file "
                "or leave it out of the inputs")
        else:
            report.add(spec, item.line, item.message)


def read_documents(spec: str, config: ReaderConfig | None = None,
                   report: BadInputReport | None = None) -> Iterator[Document]:
    """Every record of one input in order, bad ones as documents marked dropped
    ``input:<code>`` (module docstring); problems also counted in ``report`` if given.

    Raises only for a missing file or an unknown format, never on content.
    """
    for item in _read(spec, config):
        if isinstance(item, Document):
            yield item
            continue
        if report is not None:
            report.add(spec, item.line, item.message)
        if item.doc is not None:
            yield item.doc
