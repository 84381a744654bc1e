"""Offline word tokenizer, sentence counting and per-language stop words for the filters.

The heuristic filters (Gopher, C4, FineWeb) count *words*. datatrove counts them with spaCy
blank tokenizers; this module re-implements that affix-splitting algorithm in plain Python
(whitespace split, then prefix / suffix / special-case / URL / infix handling per chunk) over
the same rule tables (``_rules_data.py``, ``_en_exceptions.py``), so that no model download
and no spaCy install is needed, and it is several times faster: the common chunk (plain
alphanumeric word) takes a fast path and every other chunk is memoised.

It works for all 24 EU languages (Latin, Greek and Cyrillic scripts split on whitespace and
punctuation the same way); English additionally applies its contraction/abbreviation special
cases. ``count_sentences`` reproduces spaCy's rule-based sentencizer on a token list.

Public: ``WordTokenizer``, ``get_tokenizer(lang)``, ``count_sentences(tokens)``,
``is_punct(token)``, ``STOP_WORDS`` and ``stop_words(lang)``.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from eurollm_jax.filtering import _rules_data as _rd
from eurollm_jax.filtering._en_exceptions import EN_EXCEPTIONS

PUNCTUATION_SET = frozenset(_rd.PUNCTUATION) | _rd.TERMINAL_PUNCTUATION
TERMINAL_PUNCTUATION = _rd.TERMINAL_PUNCTUATION
SENTENCE_PUNCT = _rd.SENTENCE_PUNCT

_PREFIX_SEARCH = re.compile(_rd.PREFIX_PATTERN).search
_SUFFIX_SEARCH = re.compile(_rd.SUFFIX_PATTERN).search
_INFIX_FINDITER = re.compile(_rd.INFIX_PATTERN).finditer
_URL_MATCH = re.compile("(?u)" + _rd.URL_PATTERN).match

# Gopher's English stop words; for the other languages, the most frequent function words
# (checked against wordfreq top-100 lists where available, hand-written for ga/mt). The
# Gopher rule needs at least ``min_stop_words`` *distinct* ones, matched case-sensitively on
# tokens, exactly like datatrove.
STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("the", "be", "to", "of", "and", "that", "have", "with"),
    "bg": ("и", "в", "на", "да", "се", "с", "за", "от", "е", "че", "не", "са"),
    "cs": ("a", "v", "se", "na", "je", "že", "s", "z", "o", "to", "do", "k"),
    "da": ("og", "i", "at", "er", "en", "det", "til", "af", "på", "for", "med", "den"),
    "de": ("der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "ist"),
    "el": ("και", "το", "να", "η", "της", "του", "την", "σε", "με", "που", "τα", "των"),
    "es": ("de", "la", "que", "el", "en", "y", "a", "los", "se", "del", "las", "por"),
    "et": ("ja", "on", "et", "ei", "see", "ka", "mis", "oli", "kui", "ta", "aga", "või"),
    "fi": ("ja", "on", "ei", "että", "se", "oli", "ovat", "kun", "mutta", "tai", "hän", "myös"),
    "fr": ("de", "la", "le", "et", "les", "des", "en", "un", "du", "une", "que", "est"),
    "ga": ("an", "na", "agus", "ar", "is", "a", "i", "le", "go", "don", "ag", "sa"),
    "hr": ("i", "u", "je", "se", "na", "da", "za", "su", "od", "s", "a", "koji"),
    "hu": ("a", "az", "és", "hogy", "nem", "is", "egy", "van", "meg", "de", "ez", "el"),
    "it": ("di", "e", "il", "la", "che", "in", "a", "per", "un", "del", "è", "non"),
    "lt": ("ir", "yra", "kad", "su", "į", "iš", "o", "bet", "tai", "kaip", "buvo", "ar"),
    "lv": ("un", "ir", "ar", "uz", "no", "par", "ka", "kas", "to", "arī", "bet", "vai"),
    "mt": ("il-", "l-", "u", "li", "ta'", "tal-", "fil-", "għall-", "minn", "huwa", "ma", "jew"),
    "nl": ("de", "en", "van", "het", "een", "in", "is", "dat", "op", "te", "zijn", "met"),
    "pl": ("i", "w", "na", "z", "się", "nie", "do", "to", "że", "jest", "o", "a"),
    "pt": ("de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "é", "com"),
    "ro": ("și", "de", "în", "la", "a", "cu", "care", "pe", "din", "este", "o", "un"),
    "sk": ("a", "v", "na", "je", "sa", "že", "s", "z", "to", "do", "o", "aj"),
    "sl": ("in", "je", "v", "na", "se", "da", "za", "so", "z", "pa", "ki", "s"),
    "sv": ("och", "i", "att", "det", "som", "en", "på", "är", "av", "för", "med", "till"),
}


# Clitics written with a hyphen or apostrophe that are words of their own: Maltese articles
# ("il-bniedem", "tal-", "ta'") and Irish initial mutations ("an t-athair", "na n-éan"). The
# generic affix rules would split them into a letter run and a punctuation token, which makes
# Gopher's alphabetic-word ratio drop ordinary Maltese pages; these languages keep "il-" and
# "ta'" as one token instead.
_HYPHEN_CLITICS = {
    "mt": frozenset("l d x ċ n s t r z ż il el ir is it iċ id in iz ix iż ta tal tar tas tat taċ tad tan taż tax "
                    "fil fir fis fit fiċ fid fin fiż fix mil mill mir mis mit bil bir bis bit "
                    "għall għal għar għas għat lill lil lir lis lit sal sar sas sat mal mar "
                    "mas mat dal dar das dat kull bl".split()),
    "ga": frozenset("t n h".split()),
}
_APOSTROPHE_CLITICS = {"mt": frozenset("ta sa ma bħal".split())}


def stop_words(lang: str) -> frozenset[str]:
    """Stop words for ``lang`` (ISO 639-1); unknown languages fall back to English's."""
    return frozenset(STOP_WORDS.get(lang, STOP_WORDS["en"]))


@functools.lru_cache(maxsize=65536)
def is_punct(token: str) -> bool:
    """spaCy's ``is_punct``: every character is in a Unicode punctuation category."""
    for ch in token:
        if not unicodedata.category(ch).startswith("P"):
            return False
    return True


def count_sentences(tokens: list[str]) -> int:
    """Number of sentences spaCy's rule-based sentencizer finds in a token list.

    A sentence ends at a token in ``SENTENCE_PUNCT`` and the next one starts at the first
    following token that is neither punctuation nor a sentence-final mark.
    """
    if not tokens:
        return 0
    n = 1
    seen_period = False
    for tok in tokens:
        in_punct_chars = tok in SENTENCE_PUNCT
        if seen_period and not in_punct_chars and not is_punct(tok):
            n += 1
            seen_period = False
        elif in_punct_chars:
            seen_period = True
    return n


class WordTokenizer:
    """Splits text into word and punctuation tokens like a spaCy blank tokenizer.

    ``words(text)`` returns the non-whitespace tokens (datatrove's ``split_into_words``).
    Chunks between whitespace are tokenised once and memoised (bounded cache).
    """

    _MAX_CACHE = 200_000

    def __init__(self, language: str = "en"):
        self.language = language
        self._specials: dict[str, tuple[str, ...]] = dict(EN_EXCEPTIONS) if language == "en" else {}
        self._hyphen_clitics = _HYPHEN_CLITICS.get(language, frozenset())
        self._apos_clitics = _APOSTROPHE_CLITICS.get(language, frozenset())
        self._cache: dict[str, tuple[str, ...]] = {}
        # Special cases that the affix rules would split (emoticons, "''", ...): spaCy
        # re-merges a run of tokens equal to their affix split; so do we, within a chunk.
        self._merge: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._merge_max = 0
        if self._specials:
            specials, self._specials = self._specials, {}
            for key, toks in specials.items():
                split = self._tokenize_chunk(key)
                if len(split) > 1:
                    self._merge[split] = toks
            self._specials = specials
        self._merge_max = max((len(k) for k in self._merge), default=0)

    def words(self, text: str) -> list[str]:
        out: list[str] = []
        cache = self._cache
        specials = self._specials
        append, extend = out.append, out.extend
        for chunk in text.split():
            if (chunk.isalpha() or chunk.isdigit()) and chunk not in specials:
                append(chunk)
                continue
            toks = cache.get(chunk)
            if toks is None:
                toks = self._tokenize_chunk(chunk)
                if len(cache) >= self._MAX_CACHE:
                    cache.clear()
                cache[chunk] = toks
            extend(toks)
        return out

    __call__ = words

    def _tokenize_chunk(self, s: str) -> tuple[str, ...]:
        specials = self._specials
        if s in specials:
            return specials[s]
        prefixes: list[str] = []
        suffixes: list[str] = []
        last = -1
        while s and len(s) != last:
            if s in specials:
                break
            last = len(s)
            m = _PREFIX_SEARCH(s)
            pre_len = (m.end() - m.start()) if m is not None else 0
            prefix = minus_pre = ""
            if pre_len:
                prefix, minus_pre = s[:pre_len], s[pre_len:]
                if minus_pre and minus_pre in specials:
                    s = minus_pre
                    prefixes.append(prefix)
                    break
            m = _SUFFIX_SEARCH(s[pre_len:])
            suf_len = (m.end() - m.start()) if m is not None else 0
            suffix = minus_suf = ""
            if suf_len:
                suffix, minus_suf = s[-suf_len:], s[:-suf_len]
                if minus_suf and minus_suf in specials:
                    s = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(s):
                s = s[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                s = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                s = minus_suf
                suffixes.append(suffix)
        out = prefixes
        if s:
            if s in specials:
                out.extend(specials[s])
            elif _URL_MATCH(s):
                out.append(s)
            else:
                start = 0
                for m in _INFIX_FINDITER(s):
                    i0, i1 = m.start(), m.end()
                    if i0 == 0:
                        continue
                    if i0 != start:
                        out.append(s[start:i0])
                    if i0 != i1:
                        out.append(s[i0:i1])
                    start = i1
                if s[start:]:
                    out.append(s[start:])
        out.extend(reversed(suffixes))
        if self._merge_max and len(out) > 1:
            out = self._merge_specials(out)
        if (self._hyphen_clitics or self._apos_clitics) and len(out) > 1:
            out = self._merge_clitics(out)
        return tuple(t for t in out if t.strip())

    def _merge_clitics(self, toks: list[str]) -> list[str]:
        merged: list[str] = []
        i, n = 0, len(toks)
        while i < n:
            tok = toks[i]
            nxt = toks[i + 1] if i + 1 < n else ""
            low = tok.lower()
            if (nxt == "-" and low in self._hyphen_clitics) or (
                    nxt in ("'", "’") and low in self._apos_clitics):
                merged.append(tok + nxt)
                i += 2
            else:
                merged.append(tok)
                i += 1
        return merged

    def _merge_specials(self, toks: list[str]) -> list[str]:
        merged: list[str] = []
        i, n = 0, len(toks)
        while i < n:
            for width in range(min(self._merge_max, n - i), 1, -1):
                repl = self._merge.get(tuple(toks[i:i + width]))
                if repl is not None:
                    merged.extend(repl)
                    i += width
                    break
            else:
                merged.append(toks[i])
                i += 1
        return merged


@functools.lru_cache(maxsize=64)
def get_tokenizer(language: str = "en") -> WordTokenizer:
    """A shared tokenizer per language (each process has its own)."""
    return WordTokenizer(language)
