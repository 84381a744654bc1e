"""The trainer's data: one ``make_iterator`` for every ``config.data.source``.

This module owns the mapping from a job's ``data`` section (read through the typed schema,
``train.config.TrainJobConfig``) to the one training-data pipeline
of ``eurollm_jax.data`` (mixture, packing, batch schema ``BATCH_KEYS``, iterator state,
``set_mixture_weights``). Every source gives the same ``eurollm_jax.data.DataIterator`` of
process-local batches (dicts of numpy ``[B_local, T]`` arrays) with JSON-serialisable
``get_state()`` / ``set_state()``, saved in each checkpoint for exact resume:

- ``synthetic``: Markov-chain documents (``data.num_docs``), no files needed;
- ``text``: real multilingual text, byte-level (``tokenizer.ByteTokenizer``);
  ``data.languages`` (UDHR in gflanguages) or ``data.text_files`` (glob patterns; the file
  stem is the source name);
- ``sft``: SFT records (``eurollm_jax.data.sft``: ChatML conversations with loss on the
  assistant turns, or pre-rendered tokens with their own loss mask), byte-level
  (``data.sft_file``: a file, glob, directory or comma-separated list of JSON lines, every
  record validated up front; default a small set from gflanguages metadata); one pipeline
  source per record ``"source"`` ("sft" when absent), each with its own held-out split;
  best-fit packing (whole conversations; longer than ``train.seq_len``: dropped);
- ``pipeline``: ArrayRecord shards of a token manifest (``data.manifest``; held-out:
  ``data.eval_manifest``) written by ``python -m launch.tokenize``.

The first three are built here as in-memory token corpora (``eurollm_jax.data.
InMemoryRecords``, documents from ``eurollm_jax.train.sources``), one pipeline source per
language, file stem, SFT record source or "synthetic"; the pipeline reads them exactly as it reads shards.

Mixture: ``data.mixture`` ({name: weight}) or, when empty, ``data.weighting``
("proportional", "temperature" with ``data.temperature``, "uniform") is the iterator's
``default_mixture``; a phase's own mixture replaces it
(``it.set_mixture_weights(phase.mixture or it.default_mixture)``).

``split="eval"`` gives a finite iterator: one pass over the held-out documents (the last
``data.eval_fraction`` of each source's documents, at least one, never all of them; the eval
manifest for ``pipeline``; a different seed for ``synthetic``), then ``StopIteration``.
"""

from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from eurollm_jax.data import DataIterator, InMemoryRecords, PipelineConfig
from eurollm_jax.data import make_iterator as make_pipeline
from eurollm_jax.data.sft import read_sft_records, record_source, render_sft_record
from eurollm_jax.tokenizer import ByteTokenizer
from eurollm_jax.train import sources as S
from eurollm_jax.train.config import TrainJobConfig

SPLITS = ("train", "eval")
EVAL_SEED_OFFSET = 7919  # synthetic held-out documents: another document seed, same chain


class DataConfigError(ValueError):
    """A data section that cannot produce the batches the trainer needs."""


def _settings(config) -> TrainJobConfig:
    """The typed job settings (a ``TrainJobConfig``, or built from a job ConfigDict)."""
    return config if isinstance(config, TrainJobConfig) else TrainJobConfig.from_config(config)


def _split_docs(docs: list, eval_fraction: float, split: str) -> list:
    """Held-out: the last ``round(n * eval_fraction)`` documents (at least 1, at most n - 1);
    train: the others. A source of one document, or ``eval_fraction`` 0, holds nothing out:
    its last document is then also the held-out one."""
    n = len(docs)
    if n < 2 or eval_fraction <= 0:
        return docs if split == "train" else docs[-1:]
    k = min(max(int(round(n * eval_fraction)), 1), n - 1)
    return docs[: n - k] if split == "train" else docs[n - k :]


@functools.lru_cache(maxsize=8)
def _udhr(languages: tuple[str, ...]):
    return S.udhr_texts(languages)


def documents(config, split: str = "train") -> tuple[str, dict[str, list]]:
    """``(kind, {name: [tokens | (tokens, loss_mask)]})``: the documents of an in-memory
    source's ``split`` (kind "pretrain" or "sft", as a token manifest records it)."""
    settings = _settings(config)
    data = settings.data
    source = data.source
    vocab_size = settings.model.vocab_size
    if split not in SPLITS:
        raise DataConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if source == "pipeline":
        raise DataConfigError(
            "data.source='pipeline' reads token shards from data.manifest; documents() is "
            "for the in-memory sources (synthetic, text, sft)"
        )
    frac = data.eval_fraction
    if source == "synthetic":
        # One chain (data.seed) for both splits, so the eval loss measures what was learned;
        # the held-out documents are other walks on it (another document seed).
        doc_seed = data.seed + 1 + (EVAL_SEED_OFFSET if split == "eval" else 0)
        n = data.num_docs
        if split == "eval":
            n = max(8, n // 8)
        docs = S.markov_documents(n, vocab_size, data.seed, doc_seed=doc_seed)
        return "pretrain", {"synthetic": docs}
    tok = ByteTokenizer()
    if vocab_size < tok.vocab_size:
        raise DataConfigError(
            f"data.source={source!r} is byte-level: it needs model.vocab_size >= "
            f"{tok.vocab_size}, got {vocab_size}"
        )
    languages = tuple(data.languages or S.EU_LANGUAGES)
    if source == "text":
        files = data.text_files
        texts = S.text_file_documents(files) if files else _udhr(languages)
        return "pretrain", {
            name: [tok.encode(t) for t in _split_docs(list(docs), frac, split)]
            for name, docs in texts.items()
        }
    if data.sft_file:
        records = read_sft_records(data.sft_file)
    else:
        records = [{"messages": c} for c in S.language_conversations(languages)]
    grouped: dict[str, list] = {}
    for record in records:
        grouped.setdefault(record_source(record), []).append(record)
    return "sft", {
        name: [render_sft_record(tok, r) for r in _split_docs(group, frac, split)]
        for name, group in sorted(grouped.items())
    }


def _in_memory_sources(config, split: str) -> tuple[str, dict[str, InMemoryRecords]]:
    kind, named = documents(config, split)
    for name, docs in named.items():
        if not docs:
            raise DataConfigError(f"data source {name!r} has no {split} documents")
    return kind, {name: InMemoryRecords(docs) for name, docs in named.items()}


def make_iterator(
    config,
    *,
    split: str = "train",
    mixture: Mapping[str, float] | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    batch_size: int | None = None,
) -> DataIterator:
    """The process-local batch iterator of ``config`` (a full job config) for every source.

    ``batch_size``: rows per batch of this process (default ``train.batch_size /
    shard_count``). ``mixture``: the initial weights (default ``it.default_mixture``).
    Processes ``shard_index`` of ``shard_count`` read disjoint documents; the same
    ``shard_index`` gives the same batches.
    """
    settings = _settings(config)
    data = settings.data
    source = data.source
    if split not in SPLITS:
        raise DataConfigError(f"split must be one of {SPLITS}, got {split!r}")
    if batch_size is None:
        total = settings.train.batch_size
        if total % shard_count:
            raise DataConfigError(
                f"train.batch_size ({total}) must divide evenly over {shard_count} processes"
            )
        batch_size = total // shard_count
    default = dict(data.mixture) or data.weighting
    manifest = ""
    if source == "pipeline":
        key = "manifest" if split == "train" else "eval_manifest"
        manifest = getattr(data, key)
        if not manifest:
            raise DataConfigError(
                f"data.source='pipeline' needs data.{key}: the manifest.json (or directory) "
                "written by `python -m launch.tokenize`"
            )
    pc = PipelineConfig(
        manifest=manifest,
        batch_size=int(batch_size) * shard_count,
        seq_len=settings.train.seq_len,
        mixture=dict(mixture or {}) or default,
        default_mixture=default,
        temperature=data.temperature,
        packing=data.packing or None,
        num_epochs=None if split == "train" else 1,
        seed=data.seed + settings.seed * 1000,
        num_workers=data.num_workers,
        shard_index=shard_index,
        shard_count=shard_count,
    )
    try:
        if source == "pipeline":
            return make_pipeline(pc)
        kind, records = _in_memory_sources(settings, split)
        return make_pipeline(pc, records, kind=kind)
    except (FileNotFoundError, ValueError) as e:
        if isinstance(e, DataConfigError):
            raise
        raise DataConfigError(f"data.source={source!r}: {e}") from e


def unigram_entropy(docs, skip_first: bool = True) -> float:
    """Entropy (nats) of the token distribution of the targets (every token but a
    document's first): the loss of the best context-free predictor."""
    toks = np.concatenate([np.asarray(d)[1:] if skip_first else np.asarray(d) for d in docs])
    counts = np.bincount(toks).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def corpus_unigram_entropy(config, split: str = "train") -> float:
    """Unigram entropy (nats per target token) of an in-memory source's documents."""
    _, named = documents(config, split)
    docs = [d[0] if isinstance(d, tuple) else d for docs in named.values() for d in docs]
    return unigram_entropy(docs)
