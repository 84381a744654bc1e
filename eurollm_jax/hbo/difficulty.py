"""Difficulty scores for HBO's buckets, and the bucketed SFT file the trainer reads.

- ``ifd_scores(model, examples)``: instruction-following difficulty, ``IFD = loss(answer |
  instruction) / loss(answer)`` under a reference model (mean NLL per answer token with and
  without the instruction), scored in batches by the inference engine
  (``inference.loglikelihood``). An example is ``(tokens, loss_mask)`` as the trainer renders
  it: the answer is the masked (target) tokens, the instruction everything before the first
  of them; ``loss(answer)`` scores the answer tokens alone after BOS.
- ``ppl_scores``: the reference model's mean NLL of the targets in context (for
  pre-training text, which has no instruction); ``length_scores``: targets per example.
  Any ``fn(model, examples) -> scores`` plugs in the same way (``SCORERS``).
- ``ScoreCache``: scores cached in a JSON-lines file keyed by (scorer, reference name,
  tokens, mask), so a rerun scores only new examples.
- ``write_bucketed_sft(records, path, ...)``: renders SFT records with the trainer's
  tokenizer, scores them, cuts each subset into ``k`` equal buckets (0 = easiest) and writes
  the records with ``"source": "<subset>/b<j>"`` (plus ``hbo_subset``, ``hbo_bucket``,
  ``hbo_difficulty`` metadata): ``--config.data.source=sft --config.data.sft_file=PATH``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Mapping, Sequence

import numpy as np

from eurollm_jax.data.sft import record_source, render_sft_record, validate_sft_record
from eurollm_jax.fileio import read_jsonl, write_jsonl
from eurollm_jax.inference import as_engine, loglikelihood

from eurollm_jax.hbo.buckets import bucket_source, difficulty_buckets

Example = tuple[Sequence[int], Sequence[int]]  # (tokens, loss_mask)


def _answer_span(tokens, mask, where: str) -> tuple[int, int]:
    mask = np.asarray(mask)
    hits = np.flatnonzero(mask)
    if len(hits) == 0:
        raise ValueError(f"{where}: no target tokens (loss_mask is all 0)")
    if hits[0] == 0:
        raise ValueError(f"{where}: loss_mask[0] is 1; token 0 has no prefix to predict it")
    return int(hits[0]), int(hits[-1]) + 1


def _bos(engine) -> int:
    return int(engine.cfg.bos_token_id)


def _conditional_nll(engine, examples, max_batch_tokens) -> tuple[np.ndarray, np.ndarray]:
    requests, masks = [], []
    for i, (tokens, mask) in enumerate(examples):
        start, end = _answer_span(tokens, mask, f"example {i}")
        requests.append(([int(t) for t in tokens[:start]], [int(t) for t in tokens[start:end]]))
        masks.append(np.asarray(mask[start:end], bool))
    scored = loglikelihood(engine, requests, max_batch_tokens=max_batch_tokens)
    nll = np.array([-np.asarray(r.token_logprobs)[m].sum() for r, m in zip(scored, masks)])
    return nll, np.array([m.sum() for m in masks], np.float64)


def ifd_scores(model, examples: Sequence[Example], *, max_batch_tokens: int = 8192) -> np.ndarray:
    """IFD of each example under ``model`` (a ``Transformer`` or ``Engine``)."""
    engine = as_engine(model)
    cond, n = _conditional_nll(engine, examples, max_batch_tokens)
    bos = _bos(engine)
    alone = [([bos], [int(t) for t, m in zip(tokens, mask) if m]) for tokens, mask in examples]
    uncond = np.array([-r.logprob for r in loglikelihood(engine, alone,
                                                         max_batch_tokens=max_batch_tokens)])
    return (cond / n) / (uncond / n)


def ppl_scores(model, examples: Sequence[Example], *, max_batch_tokens: int = 8192) -> np.ndarray:
    """Mean NLL of the targets in context (log-perplexity) under ``model``."""
    cond, n = _conditional_nll(as_engine(model), examples, max_batch_tokens)
    return cond / n


def length_scores(model, examples: Sequence[Example], **_) -> np.ndarray:
    """Number of targets (no model needed: ``model`` may be None)."""
    return np.array([float(np.sum(mask)) for _, mask in examples])


SCORERS: dict[str, Callable] = {"ifd": ifd_scores, "ppl": ppl_scores, "length": length_scores}


class ScoreCache:
    """Scores in a JSON-lines file: ``{"key": ..., "score": ...}`` per example."""

    def __init__(self, path: str | None, scorer: str, reference: str):
        self.path, self.prefix = path, f"{scorer}\0{reference}\0".encode()
        self.scores: dict[str, float] = {}
        if path and os.path.exists(path):
            self.scores = {r["key"]: float(r["score"]) for r in read_jsonl(path)}

    def key(self, example: Example) -> str:
        tokens, mask = example
        h = hashlib.sha1(self.prefix)
        h.update(np.asarray(tokens, np.int64).tobytes())
        h.update(b"\0")
        h.update(np.asarray(mask, np.int8).tobytes())
        return h.hexdigest()

    def score(self, fn: Callable, model, examples: Sequence[Example], **kwargs) -> np.ndarray:
        """Scores of ``examples``; only those not in the cache are scored (then saved)."""
        keys = [self.key(e) for e in examples]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self.scores}.values())
        if todo:
            new = np.asarray(fn(model, [examples[i] for i in todo], **kwargs), np.float64)
            for i, s in zip(todo, new):
                self.scores[keys[i]] = float(s)
            if self.path:
                write_jsonl(self.path, ({"key": k, "score": v} for k, v in self.scores.items()))
        return np.array([self.scores[k] for k in keys])


def write_bucketed_sft(
    records: Sequence[Mapping],
    path: str,
    *,
    tokenizer,
    model=None,
    buckets: int = 4,
    scorer: str | Callable = "ifd",
    cache: str | None = None,
    reference: str = "reference",
    subset_of: Callable[[Mapping], str] = record_source,
) -> dict[str, list[int]]:
    """Score, bucket and write ``records`` (see the module docstring); returns
    ``{subset: [examples per bucket]}``. ``subset_of(record)`` names a record's subset
    (default its ``"source"``); ``reference`` names the model in the cache key."""
    fn = SCORERS[scorer] if isinstance(scorer, str) else scorer
    if isinstance(scorer, str) and scorer not in SCORERS:
        raise ValueError(f"unknown difficulty scorer {scorer!r}; choose one of {sorted(SCORERS)}")
    by_subset: dict[str, list[Mapping]] = {}
    for i, record in enumerate(records):
        validate_sft_record(record, f"record {i}")
        subset = subset_of(record)
        if "/" in subset:
            raise ValueError(f"record {i}: subset name {subset!r} contains '/', which HBO uses "
                             "for buckets ('<subset>/b<j>'); rename the subset")
        by_subset.setdefault(subset, []).append(record)
    score_cache = ScoreCache(cache, scorer if isinstance(scorer, str) else fn.__name__, reference)
    out, sizes = [], {}
    for subset in sorted(by_subset):
        group = by_subset[subset]
        examples = [render_sft_record(tokenizer, r) for r in group]
        scores = score_cache.score(fn, model, examples)
        parts = difficulty_buckets(scores, buckets)
        sizes[subset] = [len(p) for p in parts]
        for j, idx in enumerate(parts):
            for i in idx:
                rec = dict(group[i])
                rec.update(source=bucket_source(subset, j), hbo_subset=subset, hbo_bucket=j,
                           hbo_difficulty=float(scores[i]))
                out.append(rec)
    write_jsonl(path, out)
    return sizes
