"""Document readers for JSONL (optionally gzipped), Parquet and TFDS, with bad-input accounting.

Every reader yields ``Document``s and records what it had to skip in a ``BadInputReport``:
empty files, invalid UTF-8, malformed JSON lines, non-object lines, a missing or non-string
text field, an empty text, a missing language (when no default is given). Each problem is
counted per file and reason, and kept with its line number (1-based; Parquet/TFDS: the row
index, 0-based) up to ``max_examples`` per file, while reading continues.

Input specs understood by ``iter_documents``:

- ``path.jsonl`` / ``path.json`` / ``path.jsonl.gz``: one JSON object per line.
- ``path.parquet``: one row per document (read in record batches with pyarrow).
- ``tfds:NAME[/CONFIG][:SPLIT]``: a prepared TFDS dataset read with ``tfds.data_source``
  (random access, no TensorFlow); pass ``tfds_data_dir`` for local data.

SFT inputs (``kind="sft"``) carry a ``messages`` list of ``{"role", "content"}`` instead of a
text field.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from typing import Any, Iterator, NamedTuple


class Document(NamedTuple):
    text: str | None
    lang: str
    source: str
    line: int
    messages: list | None = None


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


@dataclasses.dataclass
class ReaderConfig:
    """Field names and defaults for turning records into documents."""

    text_field: str = "text"
    lang_field: str = "lang"
    source_field: str = "source"
    messages_field: str = "messages"
    kind: str = "pretrain"  # "pretrain" (text) or "sft" (messages)
    default_lang: str | None = None
    default_source: str | None = None  # None: the input file's stem
    tfds_data_dir: str | None = None


def input_stem(spec: str) -> str:
    """A short name for an input: file name without extensions, or the TFDS name."""
    if spec.startswith("tfds:"):
        return spec[5:].replace("/", "_").replace(":", "_")
    base = os.path.basename(spec)
    for ext in (".gz", ".jsonl", ".json", ".parquet"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return base


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


def _to_document(
    record: Any, path: str, line: int, config: ReaderConfig, report: BadInputReport
) -> Document | None:
    if not isinstance(record, dict):
        report.add(path, line, "not a JSON object")
        return None
    lang = record_field(record, config.lang_field, config.default_lang)
    if isinstance(lang, bytes):
        lang = lang.decode("utf-8", "replace")
    if not isinstance(lang, str) or not lang:
        report.add(path, line, f"missing language field {config.lang_field!r}")
        return None
    source = record_field(record, config.source_field) or config.default_source or input_stem(path)
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    source = str(source)
    if config.kind == "sft":
        messages = record.get(config.messages_field)
        if not isinstance(messages, list) or not messages:
            report.add(path, line, f"missing messages field {config.messages_field!r}")
            return None
        if not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages
        ):
            report.add(path, line, "messages must be {role, content} string pairs")
            return None
        return Document(None, lang, source, line, messages)
    if config.text_field not in record:
        report.add(path, line, f"missing text field {config.text_field!r}")
        return None
    text = record[config.text_field]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            report.add(path, line, "invalid UTF-8")
            return None
    if not isinstance(text, str):
        report.add(path, line, f"text field {config.text_field!r} is not a string")
        return None
    if not text:
        report.add(path, line, "empty text")
        return None
    return Document(text, lang, source, line)


def iter_jsonl(path: str, config: ReaderConfig, report: BadInputReport) -> Iterator[Document]:
    opener = gzip.open if path.endswith(".gz") else open
    n_lines = 0
    with opener(path, "rb") as f:
        for n_lines, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8-sig" if n_lines == 1 else "utf-8")  # tolerate a BOM
            except UnicodeDecodeError as e:
                report.add(path, n_lines, f"invalid UTF-8 (byte {e.start})")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                report.add(path, n_lines, f"malformed JSON ({e.msg})")
                continue
            doc = _to_document(record, path, n_lines, config, report)
            if doc is not None:
                yield doc
    if n_lines == 0:
        report.add(path, None, "empty file")


def iter_parquet(path: str, config: ReaderConfig, report: BadInputReport) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        report.add(path, None, f"unreadable parquet ({type(e).__name__})")
        return
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            doc = _to_document(record, path, row, config, report)
            row += 1
            if doc is not None:
                yield doc
    if row == 0:
        report.add(path, None, "empty file")


def parse_tfds_spec(spec: str) -> tuple[str, str]:
    """``tfds:NAME[/CONFIG][:SPLIT]`` -> (name, split); split defaults to ``train``."""
    body = spec[len("tfds:"):]
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


def iter_tfds(spec: str, config: ReaderConfig, report: BadInputReport) -> Iterator[Document]:
    name, split = parse_tfds_spec(spec)
    source = tfds_data_source(name, split, config.tfds_data_dir)
    n = len(source)
    if n == 0:
        report.add(spec, None, "empty file")
        return
    for start in range(0, n, 1024):
        records = source.__getitems__(list(range(start, min(n, start + 1024))))
        for i, record in enumerate(records):
            doc = _to_document(dict(record), spec, start + i, config, report)
            if doc is not None:
                yield doc


def iter_documents(
    spec: str, config: ReaderConfig | None = None, report: BadInputReport | None = None
) -> Iterator[Document]:
    """Documents of one input (see module docstring), problems recorded in ``report``."""
    config = config or ReaderConfig()
    report = report if report is not None else BadInputReport()
    if spec.startswith("tfds:"):
        yield from iter_tfds(spec, config, report)
        return
    if not os.path.exists(spec):
        raise FileNotFoundError(f"input {spec!r} does not exist")
    if spec.endswith(".parquet"):
        yield from iter_parquet(spec, config, report)
    elif spec.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        yield from iter_jsonl(spec, config, report)
    else:
        raise ValueError(
            f"input {spec!r}: unknown format; use .jsonl/.json(.gz), .parquet or tfds:NAME[:SPLIT]"
        )


def corpus_from_inputs(
    specs: list[str], config: ReaderConfig | None = None, report: BadInputReport | None = None
):
    """A re-iterable ``() -> (text, lang)`` corpus for tokenizer training.

    Problems are recorded in ``report`` on the first pass only."""
    config = config or ReaderConfig()
    state = {"first": True}

    def iterate():
        rep = report if (report is not None and state["first"]) else BadInputReport()
        state["first"] = False
        for spec in specs:
            for doc in iter_documents(spec, config, rep):
                if doc.text is not None:
                    yield doc.text, doc.lang

    return iterate
