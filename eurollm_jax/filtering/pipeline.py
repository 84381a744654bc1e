"""Builds the filtering pipeline from a config and runs one shard through it.

The config is the ``ml_collections`` file given to ``launch.filter`` (see
``configs/filter_default.py``), passed around as a plain dict so worker processes and Beam
workers can rebuild the same steps. Step order: language ID -> URL blocklist -> heuristics
(Gopher repetition, Gopher quality, C4, FineWeb) -> PII redaction -> EuroFilter quality
classifier; exact and MinHash dedup run afterwards over all shards (``runner.py``).

``process_shard(path, shard_index, config)`` is shared by the local and the Beam runner: it
reads a shard, runs the steps in batches and returns, in input order, one ``ShardRecord`` per
input record (the document, its global dedup key, and for kept documents their dedup features).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator

import numpy as np

from eurollm_jax.filtering.core import Document, Pipeline, Step
from eurollm_jax.filtering.dedup import DedupConfig
from eurollm_jax.filtering.heuristics import fineweb_heuristics
from eurollm_jax.filtering.io import read_documents
from eurollm_jax.filtering.langid import LanguageID
from eurollm_jax.filtering.pii import PIIRedactor, URLBlocklist
from eurollm_jax.languages import EU_LANGUAGES

KEY_SHARD_SHIFT = 40  # global key = shard_index << 40 | position in shard


def default_config() -> dict[str, Any]:
    """The FineWeb-style recipe for the 24 EU languages (what configs/filter_default.py holds)."""
    return {
        "input": {"text_key": "text", "id_key": "id", "max_doc_chars": 1_000_000,
                  "max_line_bytes": 16 << 20, "keep_chars": 10_000},
        "output": {"format": "jsonl.gz"},
        "language_id": {"enabled": True, "threshold": 0.65, "languages": EU_LANGUAGES,
                        "backend": "auto", "max_chars": 5000, "label_groups": None,
                        "thresholds": {}},
        "url_blocklist": {"enabled": True, "domains": (), "substrings": (), "domains_file": "",
                          "url_key": "url"},
        "heuristics": {"enabled": True, "default_language": "en", "overrides": {},
                       "per_language": {}},
        "pii": {"enabled": True, "emails": True, "ip_addresses": True, "phone_numbers": True},
        "quality": {"enabled": False, "model_dir": "", "threshold": 3.0, "batch_size": 64},
        "dedup": {"exact": True, "near": True, "ngram": 5, "bands": 14, "rows": 8, "seed": 1,
                  "verify_threshold": None},
        "runner": {"num_workers": 2, "batch_size": 256, "progress": True},
    }


def merge_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """``default_config()`` updated section by section with ``config``; unknown keys are errors."""
    merged = default_config()
    for section, values in (config or {}).items():
        if section not in merged:
            raise KeyError(f"unknown filter config section {section!r}; valid: {sorted(merged)}")
        if not isinstance(values, dict):
            raise TypeError(f"config section {section!r} must be a dict, got {type(values).__name__}")
        unknown = set(values) - set(merged[section])
        if unknown:
            raise KeyError(f"unknown keys {sorted(unknown)} in config section {section!r}; "
                           f"valid: {sorted(merged[section])}")
        merged[section].update(values)
    return merged


def build_steps(config: dict[str, Any]) -> list[Step]:
    cfg = merge_config(config)
    steps: list[Step] = []
    lid = cfg["language_id"]
    if lid["enabled"]:
        langs = lid["languages"]
        steps.append(LanguageID(lid["threshold"], None if langs in (None, "all") else tuple(langs),
                                lid["backend"], lid["max_chars"], lid["label_groups"],
                                lid["thresholds"]))
    url = cfg["url_blocklist"]
    if url["enabled"] and (url["domains"] or url["substrings"] or url["domains_file"]):
        steps.append(URLBlocklist(url["domains"], url["substrings"], url_key=url["url_key"],
                                  domains_file=url["domains_file"] or None))
    h = cfg["heuristics"]
    if h["enabled"]:
        steps.extend(fineweb_heuristics(h["default_language"], h["per_language"], **h["overrides"]))
    pii = cfg["pii"]
    if pii["enabled"]:
        steps.append(PIIRedactor(pii["emails"], pii["ip_addresses"], pii["phone_numbers"]))
    q = cfg["quality"]
    if q["enabled"]:
        if not q["model_dir"]:
            raise ValueError("quality.enabled needs quality.model_dir: a classifier saved by "
                             "`python -m launch.filter --job=train_classifier`")
        from eurollm_jax.filtering.classifier import QualityFilter

        steps.append(QualityFilter(q["model_dir"], q["threshold"], q["batch_size"]))
    return steps


def build_pipeline(config: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(build_steps(config or {}))


def dedup_config(config: dict[str, Any]) -> DedupConfig:
    return DedupConfig(**merge_config(config)["dedup"])


@dataclasses.dataclass
class ShardRecord:
    key: int
    doc: Document
    exact: int | None = None
    signature: np.ndarray | None = None


_PIPELINES: dict[str, Pipeline] = {}


def cached_pipeline(config: dict[str, Any]) -> Pipeline:
    """One pipeline per config per process (models load once per worker)."""
    k = json.dumps(config, sort_keys=True, default=str)
    if k not in _PIPELINES:
        _PIPELINES[k] = build_pipeline(config)
    return _PIPELINES[k]


def process_shard(path: str, shard_index: int, config: dict[str, Any]) -> Iterator[ShardRecord]:
    """Runs the per-document steps over one shard; yields records in input order."""
    cfg = merge_config(config)
    pipeline = cached_pipeline(config)
    dd = DedupConfig(**cfg["dedup"])
    need_features = dd.exact or dd.near
    inp = cfg["input"]
    batch_size = int(cfg["runner"]["batch_size"])
    base = shard_index << KEY_SHARD_SHIFT
    batch: list[tuple[int, Document]] = []

    def flush():
        live = [d for _, d in batch if d.drop_reason is None]
        if live:
            pipeline(live)
        for pos, doc in batch:
            rec = ShardRecord(base + pos, doc)
            if doc.drop_reason is None and need_features:
                rec.exact, rec.signature = dd.features(doc.text)
            yield rec
        batch.clear()

    docs = read_documents(path, inp["text_key"], inp["id_key"], inp["max_doc_chars"],
                          inp["max_line_bytes"], inp["keep_chars"])
    for pos, doc in enumerate(docs):
        batch.append((pos, doc))
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()
