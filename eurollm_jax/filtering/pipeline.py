"""Builds the filtering pipeline from a config and runs one shard through it.

The config is a ``config.FilterConfig`` (typed, validated once when a job starts; a partial
dict or a ConfigDict is validated into one by ``config.as_filter_config``), a picklable value
that worker processes and Beam workers rebuild the same steps from. Step order: language ID
-> URL blocklist -> heuristics (Gopher repetition, Gopher quality, C4, FineWeb) -> PII
redaction -> EuroFilter quality classifier; exact and MinHash dedup run afterwards over all
shards (``runner.py``).

``process_shard(path, shard_index, config)`` is shared by the local and the Beam runner: it
reads a shard, runs the steps in batches and returns, in input order, one ``ShardRecord`` per
input record (the document, its global dedup key, and for kept documents their dedup features).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import numpy as np

from eurollm_jax.filtering.config import FilterConfig, as_filter_config
from eurollm_jax.filtering.core import Document, Pipeline, Step
from eurollm_jax.filtering.heuristics import fineweb_heuristics
from eurollm_jax.filtering.io import read_documents
from eurollm_jax.filtering.langid import LanguageID
from eurollm_jax.filtering.pii import PIIRedactor, URLBlocklist

KEY_SHARD_SHIFT = 40  # global key = shard_index << 40 | position in shard


def build_steps(config=None) -> list[Step]:
    cfg = as_filter_config(config)
    steps: list[Step] = []
    lid = cfg.language_id
    if lid.enabled:
        steps.append(LanguageID.from_section(lid))
    url = cfg.url_blocklist
    if url.active:
        steps.append(URLBlocklist(url.domains, url.substrings, url_key=url.url_key,
                                  domains_file=url.domains_file or None))
    h = cfg.heuristics
    if h.enabled:
        steps.extend(fineweb_heuristics(h.default_language, h.per_language, **h.overrides))
    pii = cfg.pii
    if pii.enabled:
        steps.append(PIIRedactor(pii.emails, pii.ip_addresses, pii.phone_numbers))
    q = cfg.quality
    if q.enabled:  # the schema requires quality.model_dir then
        from eurollm_jax.filtering.classifier import QualityFilter

        steps.append(QualityFilter(q.model_dir, q.threshold, q.batch_size))
    return steps


def build_pipeline(config=None) -> Pipeline:
    """The per-document steps of ``config`` (a FilterConfig, a partial dict or None)."""
    return Pipeline(build_steps(config))


@dataclasses.dataclass
class ShardRecord:
    key: int
    doc: Document
    exact: int | None = None
    signature: np.ndarray | None = None


_PIPELINES: dict[str, Pipeline] = {}


def cached_pipeline(config: FilterConfig) -> Pipeline:
    """One pipeline per config per process (models load once per worker)."""
    k = json.dumps(config.to_dict(), sort_keys=True, default=str)
    if k not in _PIPELINES:
        _PIPELINES[k] = build_pipeline(config)
    return _PIPELINES[k]


def process_shard(path: str, shard_index: int, config=None) -> Iterator[ShardRecord]:
    """Runs the per-document steps over one shard; yields records in input order."""
    cfg = as_filter_config(config)
    pipeline = cached_pipeline(cfg)
    dd = cfg.dedup
    need_features = dd.exact or dd.near
    batch_size = cfg.runner.batch_size
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

    for pos, doc in enumerate(read_documents(path, cfg.input)):
        batch.append((pos, doc))
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()
