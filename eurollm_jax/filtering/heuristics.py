"""Heuristic quality filters of the FineWeb recipe, for every EU language.

``GopherRepetitionFilter``, ``GopherQualityFilter``, ``C4QualityFilter`` and
``FineWebQualityFilter`` take datatrove's defaults (the published FineWeb thresholds) and make
the same keep/drop decision with the same reason names as datatrove's classes of the same name
(checked document by document in ``tests/filtering/test_datatrove_parity.py``), but:

- words come from the offline tokenizer in ``text.py`` chosen by the document's language
  (``metadata["language"]``, else ``default_language``), with that language's stop words;
- any threshold can be overridden per language (``per_language={"fi": {"max_avg_word_length": 12}}``);
- the counting is restructured for speed (set sizes instead of Python loops, a memoised
  tokenizer, early exits), see ``bench.py`` for the side-by-side numbers.

``fineweb_heuristics()`` returns the four filters in the recipe's order (repetition, quality,
C4 with ``filter_no_terminal_punct=False``, FineWeb). As in datatrove, the C4 filter rewrites
the text of kept documents to their kept lines.
"""

from __future__ import annotations

import collections
import math
import re
from operator import itemgetter
from typing import Any

from eurollm_jax.filtering.core import Document, DocumentFilter
from eurollm_jax.filtering.text import (
    PUNCTUATION_SET,
    TERMINAL_PUNCTUATION,
    count_sentences,
    get_tokenizer,
    stop_words,
)


class _PerTokenFlag(dict):
    """Memoised per-token predicate (``flag[token]``)."""

    def __init__(self, fn):
        super().__init__()
        self._fn = fn

    def __missing__(self, key):
        if len(self) > 500_000:
            self.clear()
        value = self[key] = self._fn(key)
        return value


_IS_SYMBOL = _PerTokenFlag(lambda w: all(ch in PUNCTUATION_SET for ch in w))
_HAS_ALPHA = _PerTokenFlag(lambda w: any(ch.isalpha() for ch in w))

_last_words: list[Any] = [None, None, None]  # (text, language, words): one-slot cache


def words_of(text: str, language: str) -> list[str]:
    """Tokens of ``text`` (cached for the last document, which every filter re-reads)."""
    if _last_words[0] is text and _last_words[1] == language:
        return _last_words[2]
    words = get_tokenizer(language).words(text)
    _last_words[:] = [text, language, words]
    return words


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in repeated elements); first copies are free."""
    unique = set(items)
    if len(unique) == len(items):
        return 0, 0
    return len(items) - len(unique), sum(map(len, items)) - sum(map(len, unique))


def _ngrams(words: list[str], n: int):
    return zip(*[words[i:] for i in range(n)])


def top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent n-gram (joined with spaces) times its count."""
    counts = collections.Counter(_ngrams(words, n))
    gram, count = max(counts.items(), key=itemgetter(1))  # first of the most frequent, as Counter
    return (sum(map(len, gram)) + n - 1) * count


def duplicated_ngram_chars(words: list[str], n: int) -> int:
    """Characters in n-grams that repeat an earlier one, scanning greedily (Gopher's rule)."""
    grams = list(map("".join, _ngrams(words, n)))
    if len(set(grams)) == len(grams):
        return 0
    seen: set[str] = set()
    repeated, i, total = 0, 0, len(grams)
    while i < total:
        g = grams[i]
        if g in seen:
            repeated += len(g)
            i += n
        else:
            seen.add(g)
            i += 1
    return repeated


class _LanguageAwareFilter(DocumentFilter):
    """Shared plumbing: per-language parameter overrides and the document's language."""

    _PARAMS: tuple[str, ...] = ()

    def __init__(self, default_language: str = "en", per_language: dict | None = None, **params):
        unknown = set(params) - set(self._PARAMS)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown parameters {sorted(unknown)}; "
                            f"valid ones are {list(self._PARAMS)}")
        self.default_language = default_language
        self.params = params
        self.per_language = {k: dict(v) for k, v in (per_language or {}).items()}
        for lang, over in self.per_language.items():
            bad = set(over) - set(self._PARAMS) - {"stop_words"}
            if bad:
                raise TypeError(f"{type(self).__name__}: per_language[{lang!r}] has unknown "
                                f"parameters {sorted(bad)}")
        self._cache: dict[str, dict[str, Any]] = {}

    def _lang(self, doc: Document) -> str:
        lang = doc.metadata.get("language")
        return lang if isinstance(lang, str) and lang else self.default_language

    def _p(self, lang: str) -> dict[str, Any]:
        p = self._cache.get(lang)
        if p is None:
            p = dict(self.params)
            p.update(self.per_language.get(lang, {}))
            self._cache[lang] = p
        return p


class GopherRepetitionFilter(_LanguageAwareFilter):
    """Gopher repetition rules (Rae et al. 2021, table A1): duplicated lines, paragraphs, n-grams."""

    name = "gopher_repetition"
    _PARAMS = ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac",
               "top_n_grams", "dup_n_grams")
    _PARA = re.compile(r"\n{2,}")
    _LINE = re.compile("\n+")

    def __init__(self, dup_line_frac=0.3, dup_para_frac=0.3, dup_line_char_frac=0.2,
                 dup_para_char_frac=0.2, top_n_grams=((2, 0.2), (3, 0.18), (4, 0.16)),
                 dup_n_grams=((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
                 default_language="en", per_language=None):
        super().__init__(default_language, per_language, dup_line_frac=dup_line_frac,
                         dup_para_frac=dup_para_frac, dup_line_char_frac=dup_line_char_frac,
                         dup_para_char_frac=dup_para_char_frac,
                         top_n_grams=tuple(map(tuple, top_n_grams)),
                         dup_n_grams=tuple(map(tuple, dup_n_grams)))

    def filter(self, doc):
        text = doc.text
        if not text:
            return "empty"
        lang = self._lang(doc)
        p = self._p(lang)
        n_chars = len(text)
        paragraphs = self._PARA.split(text.strip())
        dup, dup_chars = find_duplicates(paragraphs)
        if p["dup_para_frac"] and dup / len(paragraphs) > p["dup_para_frac"]:
            return "dup_para_frac"
        if p["dup_para_char_frac"] and dup_chars / n_chars > p["dup_para_char_frac"]:
            return "dup_para_char_frac"
        lines = self._LINE.split(text)
        dup, dup_chars = find_duplicates(lines)
        if p["dup_line_frac"] and dup / len(lines) > p["dup_line_frac"]:
            return "dup_line_frac"
        if p["dup_line_char_frac"] and dup_chars / n_chars > p["dup_line_char_frac"]:
            return "dup_line_char_frac"
        words = words_of(text, lang)
        for n, frac in p["top_n_grams"]:
            if len(words) < n:
                continue
            if top_ngram_chars(words, n) / n_chars > frac:
                return f"top_{n}_gram"
        for n, frac in p["dup_n_grams"]:
            if duplicated_ngram_chars(words, n) / n_chars > frac:
                return f"duplicated_{n}_n_grams"
        return None


class GopherQualityFilter(_LanguageAwareFilter):
    """Gopher quality rules: length, mean word length, symbols, bullets, alphabetic words, stop words."""

    name = "gopher_quality"
    _PARAMS = ("min_doc_words", "max_doc_words", "min_avg_word_length", "max_avg_word_length",
               "max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
               "max_non_alpha_words_ratio", "min_stop_words")

    def __init__(self, min_doc_words=50, max_doc_words=100000, min_avg_word_length=3,
                 max_avg_word_length=10, max_symbol_word_ratio=0.1, max_bullet_lines_ratio=0.9,
                 max_ellipsis_lines_ratio=0.3, max_non_alpha_words_ratio=0.8, min_stop_words=2,
                 default_language="en", per_language=None):
        super().__init__(default_language, per_language, min_doc_words=min_doc_words,
                         max_doc_words=max_doc_words, min_avg_word_length=min_avg_word_length,
                         max_avg_word_length=max_avg_word_length,
                         max_symbol_word_ratio=max_symbol_word_ratio,
                         max_bullet_lines_ratio=max_bullet_lines_ratio,
                         max_ellipsis_lines_ratio=max_ellipsis_lines_ratio,
                         max_non_alpha_words_ratio=max_non_alpha_words_ratio,
                         min_stop_words=min_stop_words)
        self._stop: dict[str, frozenset[str]] = {}

    def _stop_words(self, lang):
        s = self._stop.get(lang)
        if s is None:
            custom = self.per_language.get(lang, {}).get("stop_words")
            s = self._stop[lang] = frozenset(custom) if custom else stop_words(lang)
        return s

    def filter(self, doc):
        text = doc.text
        lang = self._lang(doc)
        p = self._p(lang)
        words = words_of(text, lang)
        n_words = len(words)
        is_symbol = _IS_SYMBOL
        non_symbol = [w for w in words if not is_symbol[w]]
        n_non_symbol = len(non_symbol)
        if p["min_doc_words"] and n_non_symbol < p["min_doc_words"]:
            return "gopher_short_doc"
        if p["max_doc_words"] and n_non_symbol > p["max_doc_words"]:
            return "gopher_long_doc"
        avg = sum(map(len, non_symbol)) / n_non_symbol if n_non_symbol else math.nan
        if p["min_avg_word_length"] and avg < p["min_avg_word_length"]:
            return "gopher_below_avg_threshold"
        if p["max_avg_word_length"] and avg > p["max_avg_word_length"]:
            return "gopher_above_avg_threshold"
        if n_words == 0:
            return "gopher_short_doc"
        sym = p["max_symbol_word_ratio"]
        if sym and text.count("#") / n_words > sym:
            return "gopher_too_many_hashes"
        if sym and (text.count("...") + text.count("…")) / n_words > sym:
            return "gopher_too_many_ellipsis"
        lines = text.splitlines()
        if p["max_bullet_lines_ratio"] or p["max_ellipsis_lines_ratio"]:
            if not lines:
                return "gopher_short_doc"
            bullets = ellipsis = 0
            for s in lines:
                ls = s.lstrip()
                if ls[:1] in ("•", "-"):
                    bullets += 1
                rs = s.rstrip()
                if rs.endswith("...") or rs.endswith("…"):
                    ellipsis += 1
            if p["max_bullet_lines_ratio"] and bullets / len(lines) > p["max_bullet_lines_ratio"]:
                return "gopher_too_many_bullets"
            if p["max_ellipsis_lines_ratio"] and ellipsis / len(lines) > p["max_ellipsis_lines_ratio"]:
                return "gopher_too_many_end_ellipsis"
        if p["max_non_alpha_words_ratio"]:
            has_alpha = _HAS_ALPHA
            n_alpha = sum([has_alpha[w] for w in words])
            if n_alpha / n_words < p["max_non_alpha_words_ratio"]:
                return "gopher_below_alpha_threshold"
        if p["min_stop_words"] and len(self._stop_words(lang).intersection(words)) < p["min_stop_words"]:
            return "gopher_enough_stop_words"
        return None


_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                      "use of cookies", "use cookies")


class C4QualityFilter(_LanguageAwareFilter):
    """C4 line/page rules (Raffel et al. 2020); keeps only the surviving lines of kept documents."""

    name = "c4_quality"
    _PARAMS = ("remove_citations", "filter_no_terminal_punct", "min_num_sentences",
               "min_words_per_line", "max_word_length", "filter_lorem_ipsum", "filter_javascript",
               "filter_curly_bracket", "filter_policy")

    def __init__(self, remove_citations=True, filter_no_terminal_punct=True, min_num_sentences=5,
                 min_words_per_line=3, max_word_length=1000, filter_lorem_ipsum=True,
                 filter_javascript=True, filter_curly_bracket=True, filter_policy=True,
                 default_language="en", per_language=None):
        super().__init__(default_language, per_language, remove_citations=remove_citations,
                         filter_no_terminal_punct=filter_no_terminal_punct,
                         min_num_sentences=min_num_sentences,
                         min_words_per_line=min_words_per_line, max_word_length=max_word_length,
                         filter_lorem_ipsum=filter_lorem_ipsum,
                         filter_javascript=filter_javascript,
                         filter_curly_bracket=filter_curly_bracket, filter_policy=filter_policy)

    def filter(self, doc):
        lang = self._lang(doc)
        p = self._p(lang)
        tokenizer = get_tokenizer(lang)
        min_sent = p["min_num_sentences"]
        max_wl = p["max_word_length"]
        num_sentences = 0
        kept = []
        for line in doc.text.splitlines():
            line = line.strip()
            words = line.split()
            if max_wl != -1 and any(len(w) > max_wl for w in words):
                continue
            if p["remove_citations"] and "[" in line:
                line = _CITATION.sub("", line)
            if p["filter_no_terminal_punct"] and (not line.endswith(_END_PUNCTUATION)
                                                  or line.endswith("...")):
                continue
            if len(words) < p["min_words_per_line"]:
                continue
            line_l = line.lower()
            if p["filter_lorem_ipsum"] and "lorem ipsum" in line_l:
                return "lorem_ipsum"
            if p["filter_javascript"] and "javascript" in line_l:
                continue
            if p["filter_curly_bracket"] and "{" in line:
                return "curly_bracket"
            if p["filter_policy"] and any(s in line_l for s in _POLICY_SUBSTRINGS):
                continue
            if min_sent != -1 and num_sentences < min_sent:
                num_sentences += count_sentences(tokenizer.words(line))
            kept.append(line)
        if num_sentences < min_sent:
            return "too_few_sentences"
        doc.text = "\n".join(kept).strip()
        return None


class FineWebQualityFilter(_LanguageAwareFilter):
    """FineWeb's own rules: line punctuation, short lines, duplicated lines, list-like pages."""

    name = "fineweb_quality"
    _PARAMS = ("line_punct_thr", "line_punct_exclude_zero", "stop_chars", "short_line_thr",
               "short_line_length", "char_duplicates_ratio", "new_line_ratio")

    def __init__(self, line_punct_thr=0.12, line_punct_exclude_zero=False, stop_chars=None,
                 short_line_thr=0.67, short_line_length=30, char_duplicates_ratio=0.01,
                 new_line_ratio=0.3, default_language="en", per_language=None):
        super().__init__(default_language, per_language, line_punct_thr=line_punct_thr,
                         line_punct_exclude_zero=line_punct_exclude_zero,
                         stop_chars=frozenset(stop_chars) if stop_chars else TERMINAL_PUNCTUATION,
                         short_line_thr=short_line_thr, short_line_length=short_line_length,
                         char_duplicates_ratio=char_duplicates_ratio, new_line_ratio=new_line_ratio)

    def filter(self, doc):
        text = doc.text
        lang = self._lang(doc)
        p = self._p(lang)
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return "empty"
        stop = p["stop_chars"]
        if all(len(c) == 1 for c in stop):
            ratio = sum([line[-1] in stop for line in lines]) / len(lines)
        else:
            stop_t = tuple(stop)
            ratio = sum([line.endswith(stop_t) for line in lines]) / len(lines)
        if ratio < p["line_punct_thr"] and not (ratio == 0 and p["line_punct_exclude_zero"]):
            return "line_punct_ratio"
        short = p["short_line_length"]
        ratio = sum([len(line) <= short for line in lines]) / len(lines)
        if ratio > p["short_line_thr"]:
            return "short_line_ratio"
        ratio = find_duplicates(lines)[1] / len(text.replace("\n", ""))
        if ratio > p["char_duplicates_ratio"]:
            return "char_dup_ratio"
        words = words_of(text, lang)
        if not words or text.count("\n") / len(words) > p["new_line_ratio"]:
            return "list_ratio"
        return None


FINEWEB_STEPS = (GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, FineWebQualityFilter)


def fineweb_heuristics(default_language: str = "en", per_language: dict | None = None,
                       **overrides) -> list[DocumentFilter]:
    """The FineWeb recipe's heuristic chain; ``overrides={"c4_quality": {...}}`` changes a step.

    ``per_language`` maps a step name to its per-language overrides.
    """
    per_language = per_language or {}
    defaults = {"c4_quality": {"filter_no_terminal_punct": False}}
    unknown = set(overrides) - {c.name for c in FINEWEB_STEPS}
    if unknown:
        raise ValueError(f"unknown heuristic steps {sorted(unknown)}")
    steps = []
    for cls in FINEWEB_STEPS:
        kw = dict(defaults.get(cls.name, {}))
        kw.update(overrides.get(cls.name, {}))
        steps.append(cls(default_language=default_language,
                         per_language=per_language.get(cls.name), **kw))
    return steps
