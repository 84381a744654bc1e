"""RAG answer metrics: flexible exact match and the rate of answers in the question's language.

- ``flexible_exact_match(answer, golds)``: 1 when a gold answer string, normalised, is contained
  in the normalised answer span (the MKQA / CrossRAG metric). Normalisation: Unicode NFKC,
  case-folded, punctuation replaced by spaces, English/Romance articles kept (they are part of
  many gold strings in other languages), whitespace collapsed; containment is tested on word
  boundaries, so "4" does not match "40".
- ``answer_language``: the language ID of ``eurollm_jax.filtering`` (fastText lid.176 lite plus
  its second pass) on the answer span; ``language_ok`` compares its label with the question's.
- ``summarise(records)``: per (strategy, language) and averaged over languages (the macro mean).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from typing import Iterable, Sequence

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalise_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


def flexible_exact_match(answer: str | None, golds: Sequence[str]) -> float:
    if not answer:
        return 0.0
    span = f" {normalise_answer(answer)} "
    for gold in golds:
        g = normalise_answer(gold)
        if g and f" {g} " in span:
            return 1.0
    return 0.0


class AnswerLanguage:
    """Language of answer spans (lazy: the identifier loads on first use). The default is the
    filtering step's identifier (``filtering.langid.filter_identifier``, label over every
    language), the one synthesis and XL-AlpacaEval check languages with."""

    def __init__(self, identifier=None):
        self._identifier = identifier

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        if self._identifier is None:
            from eurollm_jax.filtering.langid import filter_identifier

            self._identifier = filter_identifier()
        texts = list(texts)
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        labels: list[str | None] = [None] * len(texts)
        for i, pred in zip(idx, self._identifier.predict([texts[i] for i in idx])):
            labels[i] = pred.top_language
        return labels


def summarise(records: Iterable[dict], *, keys=("em", "language_ok")) -> dict:
    """{strategy: {language: {metric: mean, "n": count}, "avg": {metric: macro mean}}}."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r["strategy"]][r["language"]].append(r)
    table: dict = {}
    for strategy, by_lang in groups.items():
        row = {}
        for lang in sorted(by_lang):
            rs = by_lang[lang]
            row[lang] = {k: sum(float(r[k]) for r in rs) / len(rs) for k in keys}
            row[lang]["n"] = len(rs)
        row["avg"] = {k: sum(row[l][k] for l in by_lang) / len(by_lang) for k in keys}
        row["avg"]["n"] = sum(row[l]["n"] for l in by_lang)
        table[strategy] = row
    return table
