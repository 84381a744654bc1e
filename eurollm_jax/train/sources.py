"""The documents of the trainer's in-memory data sources (tests, demos, benchmarks).

This module only produces documents; ``eurollm_jax.train.data`` tokenizes them (byte-level:
``eurollm_jax.tokenizer.ByteTokenizer``, ChatML through ``tokenizer.chat_template``) and
hands them to the one training-data pipeline (``eurollm_jax.data``: mixture, packing,
batches, iterator state) as in-memory token corpora. No files and no trained tokenizer:

- ``markov_documents``: token documents from a fixed random sparse Markov chain (learnable,
  any vocabulary; ids above EuroLLM's special ids, BOS first);
- ``udhr_texts`` / ``text_file_documents``: real multilingual text (the Universal
  Declaration of Human Rights passages shipped in ``gflanguages``, or local text files), by
  language or file stem;
- ``language_conversations``: a small real SFT set (``{"role", "content"}`` messages) built
  from ``gflanguages`` metadata.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Sequence

import numpy as np

from eurollm_jax.languages import EU_LANGUAGES, gflanguages_key, load_gflanguages
from eurollm_jax.tokenizer import BOS_ID, SPECIAL_TOKENS

FIRST_ID = len(SPECIAL_TOKENS)  # the first id that is not a special token


class SourceError(ValueError):
    """A data source that cannot produce documents (missing files or packages)."""


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


def markov_documents(num_docs: int, vocab: int, seed: int, min_len: int = 16, max_len: int = 200,
                     *, doc_seed: int | None = None):
    """Random walks on a fixed sparse Markov chain over ``vocab`` tokens (learnable): BOS,
    then ids in ``[FIRST_ID, vocab)``. ``seed`` fixes the chain, ``doc_seed`` (default
    ``seed + 1``) the walks: held-out documents share the chain and differ in ``doc_seed``."""
    if vocab <= FIRST_ID:
        raise SourceError(f"Markov documents need a vocabulary above {FIRST_ID} ids, got {vocab}")
    chain = np.random.default_rng(seed)
    successors = chain.integers(FIRST_ID, vocab, size=(vocab, 4))
    rng = np.random.default_rng(seed + 1 if doc_seed is None else doc_seed)
    docs = []
    for _ in range(num_docs):
        n = int(rng.integers(min_len, max_len + 1))
        doc = np.empty(n, np.int32)
        doc[0] = BOS_ID
        cur = int(rng.integers(FIRST_ID, vocab))
        for t in range(1, n):
            doc[t] = cur
            cur = int(successors[cur, rng.integers(0, 4)])
        docs.append(doc)
    return docs
