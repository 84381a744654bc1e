"""In-memory Grain sources of packed training batches (tests, demos, benchmarks).

These produce exactly the batch contract the trainer consumes: dicts of numpy arrays, all
[B, T]: ``tokens`` int32, ``segment_ids`` int32 (1..n per packed document, 0 = padding),
``positions`` int32 (restarting per document) and ``loss_mask`` int32 (1 where the token is
a training target). The production pipeline (ArrayRecord shards, language mixtures,
tokenizer) lives in ``eurollm_jax.data``; these sources need no files and no tokenizer:

- ``synthetic``: documents drawn from a fixed random sparse Markov chain (learnable, any
  vocabulary), generated per row index from the seed;
- ``text``: real multilingual text (the Universal Declaration of Human Rights passages
  shipped in ``gflanguages``, or local text files), byte-level tokens;
- ``sft``: ChatML conversations (byte-level), loss on the assistant turns only
  (content and the closing ``<|im_end|>``), built from ``gflanguages`` metadata.

Byte-level ids: 0 <unk>/pad, 1 <s>, 2 </s>, 3 <|im_start|>, 4 <|im_end|> (EuroLLM's
special ids), then byte b -> b + 5; vocabulary 261.

Iterators come from Grain (``MapDataset`` -> ``IterDataset``): ``get_state()`` /
``set_state()`` give a JSON-serialisable position for exact resume. With several
processes each takes every ``shard_count``-th row, so the union of the process-local
batches of a step is the same set of rows a single process would see.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Iterable, Mapping, Sequence

import grain
import numpy as np

from eurollm_jax.languages import EU_LANGUAGES, gflanguages_key, load_gflanguages

PAD, BOS, EOS, IM_START, IM_END = 0, 1, 2, 3, 4
BYTE_OFFSET = 5
BYTE_VOCAB = 256 + BYTE_OFFSET


class SourceError(ValueError):
    """A data source that cannot produce batches (missing files, bad sizes)."""


# --------------------------------------------------------------------------- tokens
def byte_tokenize(text: str, *, bos: bool = True) -> np.ndarray:
    ids = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + BYTE_OFFSET
    return np.concatenate([[BOS], ids]).astype(np.int32) if bos else ids


def byte_detokenize(ids: Iterable[int]) -> str:
    data = bytes(int(i) - BYTE_OFFSET for i in ids if int(i) >= BYTE_OFFSET)
    return data.decode("utf-8", errors="replace")


def unigram_entropy(docs: Sequence[np.ndarray], skip_first: bool = True) -> float:
    """Entropy (nats) of the token distribution of the targets (every token but a
    document's first): the loss of the best context-free predictor."""
    toks = np.concatenate([d[1:] if skip_first else d for d in docs])
    counts = np.bincount(toks).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


# --------------------------------------------------------------------------- packing
def pack_documents(
    docs: Sequence[np.ndarray], seq_len: int, loss_masks: Sequence[np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Greedily pack documents into rows of ``seq_len``; a document that does not fit is
    split, its remainder starting the next row as a new segment. Returns [N, T] arrays."""
    if seq_len < 2:
        raise SourceError(f"seq_len must be at least 2, got {seq_len}")
    keys = ("tokens", "segment_ids", "positions", "loss_mask")
    rows: list[dict[str, np.ndarray]] = []
    row = {k: np.zeros(seq_len, np.int32) for k in keys}
    fill, nseg = 0, 0

    def flush():
        nonlocal row, fill, nseg
        if fill:
            row["positions"][fill:] = np.arange(seq_len - fill)  # the padding run counts too
            rows.append(row)
        row = {k: np.zeros(seq_len, np.int32) for k in keys}
        fill, nseg = 0, 0

    for i, doc in enumerate(docs):
        doc = np.asarray(doc, np.int32)
        mask = np.ones_like(doc) if loss_masks is None else np.asarray(loss_masks[i], np.int32)
        while len(doc):
            if fill >= seq_len - 1:  # a one-token segment trains nothing
                flush()
            take = min(len(doc), seq_len - fill)
            nseg += 1
            row["tokens"][fill : fill + take] = doc[:take]
            row["segment_ids"][fill : fill + take] = nseg
            row["positions"][fill : fill + take] = np.arange(take)
            row["loss_mask"][fill : fill + take] = mask[:take]
            fill += take
            doc, mask = doc[take:], mask[take:]
            if fill == seq_len:
                flush()
    flush()
    if not rows:
        raise SourceError("no documents to pack")
    return {k: np.stack([r[k] for r in rows]) for k in keys}


def _rows_list(packed: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    n = len(packed["tokens"])
    return [{k: v[i] for k, v in packed.items()} for i in range(n)]


# --------------------------------------------------------------------------- corpora
def udhr_texts(languages: Sequence[str] = tuple(EU_LANGUAGES)) -> dict[str, list[str]]:
    """Per language, the distinct sentences of the UDHR passages in ``gflanguages``."""
    try:
        langs = load_gflanguages()
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SourceError("the 'text' source's UDHR corpus needs `pip install gflanguages`") from e
    out = {}
    for code in languages:
        key = gflanguages_key(code)
        if key not in langs:
            raise SourceError(f"language {code!r} ({key}) is not in gflanguages")
        st = langs[key].sample_text
        seen, sentences = set(), []
        for field, value in st.ListFields():
            if not isinstance(value, str):
                continue
            for s in re.split(r"(?<=[.!?;։።])\s+|\n+", value):
                s = s.strip()
                if len(s) > 8 and s not in seen and not any(s in t for t in seen):
                    seen.add(s)
                    sentences.append(s)
        # Drop fragments contained in longer sentences found later.
        sentences = [s for s in sentences if not any(s != t and s in t for t in sentences)]
        out[code] = sentences
    return out


def text_file_documents(patterns: Sequence[str]) -> dict[str, list[str]]:
    """Documents from local text files: one document per blank-line separated paragraph,
    grouped by file stem (the mixture key)."""
    out: dict[str, list[str]] = {}
    for pattern in patterns:
        files = sorted(glob.glob(pattern))
        if not files:
            raise SourceError(f"data.text_files pattern {pattern!r} matches no file")
        for path in files:
            with open(path, encoding="utf-8") as f:
                paras = [p.strip() for p in f.read().split("\n\n") if p.strip()]
            stem = os.path.splitext(os.path.basename(path))[0]
            out.setdefault(stem, []).extend(paras)
    return out


def chatml_encode(messages: Sequence[Mapping[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Byte-level ChatML tokens and loss mask (1 on assistant content and its <|im_end|>)."""
    toks, mask = [np.array([BOS], np.int32)], [np.array([0], np.int32)]
    for m in messages:
        role, content = m["role"], m["content"]
        head = np.concatenate([[IM_START], byte_tokenize(f"{role}\n", bos=False)]).astype(np.int32)
        body = np.concatenate([byte_tokenize(content, bos=False), [IM_END]]).astype(np.int32)
        tail = byte_tokenize("\n", bos=False)
        train = 1 if role == "assistant" else 0
        toks += [head, body, tail]
        mask += [np.zeros_like(head), np.full_like(body, train), np.zeros_like(tail)]
    return np.concatenate(toks), np.concatenate(mask)


def language_conversations(languages: Sequence[str] = tuple(EU_LANGUAGES)) -> list[list[dict]]:
    """Small real SFT set from gflanguages metadata: ask for a language's own name and for
    the first article of the UDHR in it."""
    langs = load_gflanguages()
    texts = udhr_texts(languages)
    convs = []
    for code in languages:
        lang = langs[gflanguages_key(code)]
        convs.append(
            [
                {"role": "system", "content": "You are a helpful multilingual assistant."},
                {
                    "role": "user",
                    "content": f"What do speakers of {lang.name} call their language?",
                },
                {"role": "assistant", "content": f"{lang.autonym}."},
            ]
        )
        if texts[code]:
            convs.append(
                [
                    {
                        "role": "user",
                        "content": f"Quote the first sentence of the UDHR in {lang.name}.",
                    },
                    {"role": "assistant", "content": texts[code][0]},
                ]
            )
    return convs


def markov_documents(num_docs: int, vocab: int, seed: int, min_len: int = 16, max_len: int = 200):
    """Random documents from a fixed sparse Markov chain over ``vocab`` tokens (learnable)."""
    chain = np.random.default_rng(seed)
    successors = chain.integers(BYTE_OFFSET, vocab, size=(vocab, 4))
    rng = np.random.default_rng(seed + 1)
    docs = []
    for _ in range(num_docs):
        n = int(rng.integers(min_len, max_len + 1))
        doc = np.empty(n, np.int32)
        doc[0] = BOS
        cur = int(rng.integers(BYTE_OFFSET, vocab))
        for t in range(1, n):
            doc[t] = cur
            cur = int(successors[cur, rng.integers(0, 4)])
        docs.append(doc)
    return docs


# --------------------------------------------------------------------------- datasets
def rows_dataset(packed: Mapping[str, np.ndarray], seed: int) -> grain.MapDataset:
    """An infinite, shuffled (per epoch) MapDataset of packed rows."""
    return grain.MapDataset.source(_rows_list(packed)).shuffle(seed=seed).repeat()


def mixture_dataset(named: Mapping[str, grain.MapDataset], weights: Mapping[str, float] | None):
    names = sorted(named)
    if weights:
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise SourceError(f"mixture names {unknown} are not data sources; known: {names}")
        names = [n for n in names if weights.get(n, 0) > 0]
        if not names:
            raise SourceError("the data mixture gives every source weight 0")
        w = [float(weights[n]) for n in names]
    else:
        w = [1.0] * len(names)
    if len(names) == 1:
        return named[names[0]]
    return grain.MapDataset.mix([named[n] for n in names], w)


def batch_iterator(
    ds: grain.MapDataset, batch_size: int, shard_index: int = 0, shard_count: int = 1
):
    """Process-local batches of ``batch_size // shard_count`` rows, as a Grain iterator."""
    if batch_size % shard_count:
        raise SourceError(
            f"the global batch ({batch_size}) must divide evenly over {shard_count} processes"
        )
    if shard_count > 1:
        ds = ds[shard_index::shard_count]
    ds = ds.batch(batch_size // shard_count, drop_remainder=True)
    return iter(ds.to_iter_dataset())
