"""Tokenization job: documents -> ArrayRecord token shards and a manifest.

Inputs are whatever ``eurollm_jax.documents`` reads (JSONL plain/.gz/.zst, Parquet, TFDS), so
the filter's output in any of its formats is an input.

Layout under ``output_dir``::

    <lang>/<source>/<input-key>-00000.array_record   token records (see ``records``)
    _markers/<input-key>.json                         one per finished input (commit point)
    manifest.json                                     token counts per language and source

The unit of work is one input (a file or a TFDS split); inputs run in parallel processes
(``num_workers``). An input is complete when its marker exists: shards are written under
temporary names and renamed, then the marker is written atomically, so a job killed at any
point resumes by redoing only the inputs without a marker (their partial shards are
removed first). Bad lines are counted per file with line numbers (``BadInputReport``) and the
job continues; an input that cannot be read to its end (``UnreadableInputError``: corrupt,
truncated) is listed under ``failed_inputs`` and retried on the next run. Progress
(documents, tokens/s, MB/s, ETA by inputs) goes to ``progress``.

Settings: ``TokenizeConfig``, a typed ``eurollm_jax.schema.Section`` whose ``reader`` section
is the document reader's own options (``documents.ReaderConfig``), defaults defined once there
(``launch.tokenize`` takes its flag defaults from them) and validated once by ``run``.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import functools
import glob
import hashlib
import multiprocessing
import os
import re
import sys
import time
import traceback
from typing import Callable, Mapping

from eurollm_jax.data.records import DEFAULT_WRITER_OPTIONS, RecordWriter
from eurollm_jax.documents import BadInputReport, ReaderConfig, input_stem, iter_documents
from eurollm_jax.fileio import read_json, write_json
from eurollm_jax.schema import Section
from eurollm_jax.tokenizer import Tokenizer

MANIFEST = "manifest.json"
MARKERS = "_markers"
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TokenizeConfig(Section):
    """The tokenization job's settings: what to read (``reader``: the document reader's
    options, ``documents.ReaderConfig``, whose ``kind`` says text or conversations), where
    to write and how to encode. ``run`` validates them (``TokenizeConfig.from_mapping``) before
    any work: errors name the field, unknown keys the nearest valid one."""

    inputs: tuple[str, ...] = ()  # files or tfds: specs (launch.tokenize expands globs)
    output_dir: str = ""
    tokenizer: str = ""  # SentencePiece tokenizer.model
    reader: ReaderConfig = dataclasses.field(default_factory=ReaderConfig)
    add_bos: bool = True
    add_eos: bool = True  # pre-training documents end with </s> (ignored for SFT)
    num_workers: int = 1  # processes, one input each at a time
    encode_threads: int = 0  # 0: all cores with one worker, 1 per worker otherwise
    encode_batch_size: int = 512
    max_records_per_shard: int = 200_000
    writer_options: str = DEFAULT_WRITER_OPTIONS
    progress_every_s: float = 10.0

    @property
    def kind(self) -> str:
        """``"pretrain"`` (text documents) or ``"sft"`` (ChatML conversations)."""
        return self.reader.kind

    def check(self, path):
        for name in ("output_dir", "tokenizer"):
            self.require(path, bool(getattr(self, name)), name, "required")
        self.require(path, bool(self.inputs), "inputs", "give at least one input")
        for name in ("num_workers", "encode_batch_size", "max_records_per_shard"):
            self.require(path, getattr(self, name) > 0, name, "must be positive")
        self.require(path, self.encode_threads >= 0, "encode_threads",
                     "must be >= 0 (0: all cores with one worker, 1 per worker otherwise)")
        self.require(path, self.progress_every_s >= 0, "progress_every_s", "must be >= 0")


def _safe(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return name or "unknown"


def input_key(spec: str) -> str:
    digest = hashlib.sha1(os.path.abspath(spec).encode() if not spec.startswith("tfds:")
                          else spec.encode()).hexdigest()[:10]
    return f"{_safe(input_stem(spec))}-{digest}"


def source_name(lang: str, source: str) -> str:
    """The mixture name of a (language, source) pair: ``"<lang>/<source>"``."""
    return f"{_safe(lang)}/{_safe(source)}"


@functools.cache
def _load_tokenizer(path: str) -> Tokenizer:
    return Tokenizer.load(path)


def _remove_partial(output_dir: str, key: str) -> None:
    for path in glob.glob(os.path.join(output_dir, "*", "*", f"{key}-*.array_record*")):
        os.remove(path)


class ShardWriters:
    """The shards of one input: ``<name>/<key>-NNNNN.array_record`` under ``output_dir`` per
    source name, a new shard every ``max_records`` records. ``close()`` returns their
    marker entries (sorted by path); ``abort()`` drops the shards still open."""

    def __init__(self, output_dir: str, key: str, max_records: int,
                 options: str = DEFAULT_WRITER_OPTIONS):
        self.output_dir, self.key, self.max_records, self.options = (
            output_dir, key, max_records, options)
        self._open: dict[str, tuple[str, RecordWriter]] = {}
        self._next: dict[str, int] = {}
        self._shards: list[dict] = []

    def write(self, name: str, tokens, loss_mask=None) -> None:
        if name in self._open and self._open[name][1].records >= self.max_records:
            self._close(name)
        if name not in self._open:
            k = self._next.get(name, 0)
            self._next[name] = k + 1
            rel = os.path.join(name, f"{self.key}-{k:05d}.array_record")
            self._open[name] = rel, RecordWriter(os.path.join(self.output_dir, rel), self.options)
        self._open[name][1].write(tokens, loss_mask)

    def _close(self, name: str) -> None:
        rel, w = self._open.pop(name)
        w.close()
        lang, source = name.split("/", 1)
        self._shards.append({"path": rel, "name": name, "lang": lang, "source": source,
                             "records": w.records, "tokens": w.tokens})

    def close(self) -> list[dict]:
        for name in list(self._open):
            self._close(name)
        return sorted(self._shards, key=lambda s: s["path"])

    def abort(self) -> None:
        for _, w in self._open.values():
            w.abort()


def write_marker(output_dir: str, marker: dict) -> None:
    """Commit one finished input: ``_markers/<key>.json``, written atomically."""
    write_json(os.path.join(output_dir, MARKERS, f"{marker['key']}.json"), marker)


def tokenize_input(spec: str, config: TokenizeConfig, encode_threads: int = -1) -> dict:
    """Tokenize one input into shards; write and return its completion marker."""
    start = time.perf_counter()
    tok = _load_tokenizer(config.tokenizer)
    key = input_key(spec)
    _remove_partial(config.output_dir, key)
    report = BadInputReport()
    writers = ShardWriters(config.output_dir, key, config.max_records_per_shard,
                           config.writer_options)
    stats = {"docs": 0, "tokens": 0, "bytes": 0}
    last_log = start

    def flush(batch: list) -> None:
        nonlocal last_log
        if not batch:
            return
        if config.kind == "sft":
            encoded = [tok.render_chat(d.messages, add_bos=config.add_bos) for d in batch]
        else:
            ids = tok.encode_batch([d.text for d in batch], add_bos=config.add_bos,
                                   add_eos=config.add_eos, num_threads=encode_threads)
            encoded = [(x, None) for x in ids]
        for doc, (ids, mask) in zip(batch, encoded):
            writers.write(source_name(doc.lang, doc.source), ids, mask)
            stats["docs"] += 1
            stats["tokens"] += len(ids)
            stats["bytes"] += (len(doc.text.encode("utf-8")) if doc.text is not None
                               else sum(len(m["content"].encode("utf-8")) for m in doc.messages))
        batch.clear()
        now = time.perf_counter()
        if now - last_log >= config.progress_every_s:
            last_log = now
            rate = stats["tokens"] / max(now - start, 1e-9)
            print(f"[tokenize] {spec}: {stats['docs']} docs, {stats['tokens']} tokens, "
                  f"{rate:,.0f} tokens/s", file=sys.stderr, flush=True)

    try:
        batch: list = []
        for doc in iter_documents(spec, config.reader, report):
            batch.append(doc)
            if len(batch) >= config.encode_batch_size:
                flush(batch)
        flush(batch)
        shards = writers.close()
    except BaseException:
        writers.abort()
        raise
    marker = {
        "input": spec,
        "key": key,
        "kind": config.kind,
        "tokenizer_sha256": tok.sha256,
        "shards": shards,
        "bad_input": report.files,
        "seconds": round(time.perf_counter() - start, 3),
        **stats,
    }
    write_marker(config.output_dir, marker)
    return marker


def _worker(spec: str, config: TokenizeConfig, encode_threads: int):
    try:
        return tokenize_input(spec, config, encode_threads), None
    except Exception as e:  # reported by the parent; the other inputs go on
        return None, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"


def read_markers(output_dir: str) -> dict[str, dict]:
    out = {}
    for path in sorted(glob.glob(os.path.join(output_dir, MARKERS, "*.json"))):
        marker = read_json(path)
        out[marker["key"]] = marker
    return out


def build_manifest(output_dir: str, tokenizer=None, failed: dict | None = None) -> dict:
    """Aggregate every completion marker under ``output_dir`` into ``manifest.json``."""
    markers = read_markers(output_dir)
    shas = {m["tokenizer_sha256"] for m in markers.values()}
    kinds = {m["kind"] for m in markers.values()}
    if len(shas) > 1 or len(kinds) > 1:
        raise ValueError(
            f"{output_dir} mixes shards of different tokenizers {sorted(shas)} or kinds "
            f"{sorted(kinds)}; tokenize into separate output directories"
        )
    sources: dict = {}
    report = BadInputReport()
    for m in markers.values():
        report.merge(m["bad_input"])
        for s in m["shards"]:
            entry = sources.setdefault(s["name"], {
                "language": s["lang"], "source": s["source"], "shards": [],
                "shard_records": [], "records": 0, "tokens": 0,
            })
            entry["shards"].append(s["path"])
            entry["shard_records"].append(s["records"])
            entry["records"] += s["records"]
            entry["tokens"] += s["tokens"]
    by_language: dict = {}
    by_source: dict = {}
    for entry in sources.values():
        by_language[entry["language"]] = by_language.get(entry["language"], 0) + entry["tokens"]
        by_source[entry["source"]] = by_source.get(entry["source"], 0) + entry["tokens"]
    manifest = {
        "version": MANIFEST_VERSION,
        "kind": kinds.pop() if kinds else None,
        "tokenizer": {
            "sha256": shas.pop() if shas else None,
            "path": getattr(tokenizer, "path", None),
            "vocab_size": getattr(tokenizer, "vocab_size", None),
            "pad_id": getattr(tokenizer, "pad_id", None),
        },
        "sources": dict(sorted(sources.items())),
        "tokens_by_language": dict(sorted(by_language.items())),
        "tokens_by_source": dict(sorted(by_source.items())),
        "totals": {
            "inputs": len(markers),
            "docs": sum(m["docs"] for m in markers.values()),
            "tokens": sum(m["tokens"] for m in markers.values()),
            "bytes": sum(m["bytes"] for m in markers.values()),
        },
        "inputs": sorted(m["input"] for m in markers.values()),
        "bad_input": report.to_dict(),
        "failed_inputs": failed or {},
    }
    write_json(os.path.join(output_dir, MANIFEST), manifest)
    return manifest


def load_manifest(path: str) -> dict:
    """Read ``manifest.json`` (``path`` is the file or the tokenized directory)."""
    file = os.path.join(path, MANIFEST) if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise FileNotFoundError(
            f"no token manifest at {file!r}: run `python -m launch.tokenize` on your corpus first"
        )
    manifest = read_json(file)
    manifest["root"] = os.path.dirname(os.path.abspath(file))
    return manifest


def run(config: TokenizeConfig | Mapping, progress: Callable[[str], None] | None = None) -> dict:
    """Tokenize every input not yet marked complete; write and return the manifest.

    ``config``: a ``TokenizeConfig`` or a mapping of its fields (``{"reader": {"kind":
    "sft"}, ...}``), validated here before any work."""
    progress = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    config = TokenizeConfig.from_mapping(config)
    missing = [s for s in config.inputs if not s.startswith("tfds:") and not os.path.exists(s)]
    if missing:
        raise FileNotFoundError(f"input file(s) not found: {missing[:5]}")
    tok = _load_tokenizer(config.tokenizer)
    os.makedirs(config.output_dir, exist_ok=True)
    done = read_markers(config.output_dir)
    for marker in done.values():
        if marker["tokenizer_sha256"] != tok.sha256 or marker["kind"] != config.kind:
            raise ValueError(
                f"{config.output_dir} already holds shards from another tokenizer or kind "
                f"(input {marker['input']}); use a new output directory"
            )
    todo = [s for s in dict.fromkeys(config.inputs) if input_key(s) not in done]
    progress(f"[tokenize] {len(config.inputs)} inputs, {len(config.inputs) - len(todo)} already "
             f"done, {len(todo)} to do, {config.num_workers} worker(s)")
    failed: dict = {}
    start = time.perf_counter()
    totals = {"docs": 0, "tokens": 0, "bytes": 0}

    def on_done(spec: str, marker: dict | None, error: str | None, k: int) -> None:
        if error is not None:
            failed[spec] = error
            progress(f"[tokenize] FAILED {spec}: {error.splitlines()[0]}")
            return
        for f in totals:
            totals[f] += marker[f]
        elapsed = max(time.perf_counter() - start, 1e-9)
        eta = elapsed / k * (len(todo) - k)
        bad = BadInputReport(files=marker["bad_input"]).total
        progress(f"[tokenize] {k}/{len(todo)} {spec}: {marker['docs']} docs, "
                 f"{marker['tokens']} tokens, {bad} bad lines | total "
                 f"{totals['tokens'] / elapsed:,.0f} tokens/s, "
                 f"{totals['bytes'] / elapsed / 1e6:.2f} MB/s, ETA {eta:.0f}s")

    if config.num_workers <= 1 or len(todo) <= 1:
        threads = config.encode_threads or -1
        for k, spec in enumerate(todo, start=1):
            marker, error = _worker(spec, config, threads)
            on_done(spec, marker, error, k)
    else:
        threads = config.encode_threads or 1
        ctx = multiprocessing.get_context("spawn")
        with futures.ProcessPoolExecutor(config.num_workers, mp_context=ctx) as pool:
            jobs = {pool.submit(_worker, spec, config, threads): spec for spec in todo}
            for k, job in enumerate(futures.as_completed(jobs), start=1):
                marker, error = job.result()
                on_done(jobs[job], marker, error, k)
    manifest = build_manifest(config.output_dir, tok, failed)
    manifest["job"] = {
        "seconds": round(time.perf_counter() - start, 3),
        **totals,
    }
    bad = BadInputReport(files=manifest["bad_input"]["files"])
    progress(f"[tokenize] done: {manifest['totals']['tokens']} tokens in "
             f"{len(manifest['sources'])} (language, source) groups; {bad.summary()}")
    return manifest


def summarize(manifest: dict) -> str:
    lines = ["| source | records | tokens |", "|---|---|---|"]
    for name, entry in manifest["sources"].items():
        lines.append(f"| {name} | {entry['records']} | {entry['tokens']} |")
    return "\n".join(lines)


__all__ = [
    "TokenizeConfig", "run", "tokenize_input", "build_manifest", "load_manifest",
    "read_markers", "write_marker", "ShardWriters", "source_name", "input_key", "summarize",
]
