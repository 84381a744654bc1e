"""Batch iterators for the trainer, chosen by ``config.data.source``.

Every iterator yields process-local batches (dicts of numpy [B_local, T] arrays, see
``eurollm_jax.train.sources`` for the contract) and has JSON-serialisable
``get_state()`` / ``set_state()``, saved in each checkpoint for exact resume.

Sources:
- ``synthetic``: Markov-chain documents (``data.num_docs``), no files needed;
- ``text``: real multilingual text, byte-level; ``data.languages`` (UDHR in gflanguages)
  or ``data.text_files`` (glob patterns; the file stem is the mixture key);
- ``sft``: ChatML conversations with loss on assistant turns (``data.sft_file``: a jsonl
  of ``{"messages": [...]}``, default a small set from gflanguages metadata);
- ``pipeline``: the production Grain pipeline of ``eurollm_jax.data`` (ArrayRecord shards).

A phase's ``mixture`` (name -> weight) selects and weights the named sub-sources
(languages, file stems); ``data.mixture`` is the default for phases that set none.
``split="eval"`` gives held-out batches (the last ``data.eval_fraction`` of documents of
each sub-source; a different seed for ``synthetic``).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import sources as S

SOURCES = ("synthetic", "text", "sft", "pipeline")


class DataConfigError(ValueError):
    """A data section that cannot produce the batches the trainer needs."""


def _split_docs(docs: list, eval_fraction: float, split: str) -> list:
    n_eval = int(round(len(docs) * eval_fraction))
    if split == "eval":
        return docs[len(docs) - n_eval :] if n_eval else docs[-1:]
    return docs[: len(docs) - n_eval] if n_eval < len(docs) else docs


@functools.lru_cache(maxsize=8)
def _udhr(languages: tuple[str, ...]):
    return S.udhr_texts(languages)


def named_token_docs(data: Mapping[str, Any], split: str, vocab_size: int):
    """name -> (list of token docs, list of loss masks or None) for the in-memory sources."""
    source = data["source"]
    frac = float(data.get("eval_fraction", 0.1))
    if source == "synthetic":
        seed = int(data.get("seed", 0)) + (7919 if split == "eval" else 0)
        n = int(data.get("num_docs", 512))
        if split == "eval":
            n = max(8, n // 8)
        return {"synthetic": (S.markov_documents(n, vocab_size, seed), None)}
    if vocab_size < S.BYTE_VOCAB:
        raise DataConfigError(
            f"byte-level sources need model.vocab_size >= {S.BYTE_VOCAB}, got {vocab_size}"
        )
    if source == "text":
        files = tuple(data.get("text_files", ()) or ())
        texts = (
            S.text_file_documents(files)
            if files
            else _udhr(tuple(data.get("languages") or S.EU_LANGUAGES))
        )
        return {
            name: ([S.byte_tokenize(t) for t in _split_docs(list(docs), frac, split)], None)
            for name, docs in texts.items()
        }
    if source == "sft":
        path = data.get("sft_file", "")
        if path:
            convs = [record["messages"] for record in read_jsonl(path)]
        else:
            convs = S.language_conversations(tuple(data.get("languages") or S.EU_LANGUAGES))
        encoded = [S.chatml_encode(c) for c in _split_docs(convs, frac, split)]
        return {"sft": ([t for t, _ in encoded], [m for _, m in encoded])}
    raise DataConfigError(f"unknown data.source {source!r}; choose one of {SOURCES}")


def make_iterator(
    config,
    *,
    split: str = "train",
    mixture: Mapping[str, float] | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    batch_size: int | None = None,
):
    """A process-local batch iterator for ``config`` (a full job ConfigDict)."""
    data = config.data
    train = config.train
    batch_size = int(batch_size or train.batch_size)
    seq_len = int(train.seq_len)
    source = data.source
    if source not in SOURCES:
        raise DataConfigError(f"unknown data.source {source!r}; choose one of {SOURCES}")
    if source == "pipeline":
        return _pipeline_iterator(
            config,
            split=split,
            mixture=mixture,
            shard_index=shard_index,
            shard_count=shard_count,
            batch_size=batch_size,
        )
    named = named_token_docs(
        data.to_dict() if hasattr(data, "to_dict") else dict(data),
        split,
        int(config.model.vocab_size),
    )
    seed = int(data.get("seed", 0)) + int(config.seed) * 1000
    datasets = {}
    for i, (name, (docs, masks)) in enumerate(sorted(named.items())):
        if not docs:
            raise DataConfigError(f"data source {name!r} has no {split} documents")
        datasets[name] = S.rows_dataset(S.pack_documents(docs, seq_len, masks), seed + i)
    weights = mixture if mixture is not None else (dict(data.get("mixture") or {}) or None)
    ds = S.mixture_dataset(datasets, weights)
    return S.batch_iterator(ds, batch_size, shard_index, shard_count)


def _pipeline_iterator(config, *, split, mixture, shard_index, shard_count, batch_size):
    """The production pipeline (``eurollm_jax.data``) over a tokenized manifest.

    ``data.manifest`` (train) / ``data.eval_manifest`` (held-out; read once per evaluation),
    ``data.mixture`` ({"<lang>/<source>": weight}) or ``data.weighting`` ("proportional",
    "temperature" with ``data.temperature``, "uniform") when no mixture is given,
    ``data.packing`` ("" = from the manifest kind), ``data.num_workers``, ``data.seed``.
    """
    from eurollm_jax.data import PipelineConfig
    from eurollm_jax.data import make_iterator as make_pipeline

    d = config.data
    manifest = d.get("manifest", "") if split == "train" else d.get("eval_manifest", "")
    if not manifest:
        key = "data.manifest" if split == "train" else "data.eval_manifest"
        raise DataConfigError(
            f"data.source='pipeline' needs {key}: the manifest.json (or directory) written by "
            f"`python -m launch.tokenize`"
        )
    weights = (
        mixture if mixture else (dict(d.get("mixture") or {}) or d.get("weighting", "proportional"))
    )
    pc = PipelineConfig(
        manifest=manifest,
        batch_size=int(batch_size),
        seq_len=int(config.train.seq_len),
        mixture=weights,
        temperature=float(d.get("temperature", 3.0)),
        packing=d.get("packing", "") or None,
        num_epochs=None if split == "train" else 1,
        seed=int(d.get("seed", 0)) + int(config.seed) * 1000,
        num_workers=int(d.get("num_workers", 0)),
        shard_index=shard_index,
        shard_count=shard_count,
    )
    try:
        return make_pipeline(pc)
    except (FileNotFoundError, ValueError) as e:
        raise DataConfigError(f"data.source='pipeline': {e}") from e


def switch_mixture(iterator, config, mixture, *, shard_index: int, shard_count: int):
    """The iterator for a new phase: the same pipeline with new weights (documents keep
    flowing from where they were), or a fresh in-memory source with the phase's mixture."""
    if mixture and hasattr(iterator, "set_mixture_weights"):
        iterator.set_mixture_weights(mixture)
        return iterator
    if not mixture and config.data.source == "pipeline":
        return iterator
    return make_iterator(config, mixture=mixture, shard_index=shard_index, shard_count=shard_count)


def corpus_unigram_entropy(config, split: str = "train") -> float:
    """Unigram entropy (nats per target token) of an in-memory source's documents."""
    named = named_token_docs(config.data.to_dict(), split, int(config.model.vocab_size))
    docs = [d for docs, _ in named.values() for d in docs]
    return S.unigram_entropy(docs)
