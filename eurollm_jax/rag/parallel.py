"""Real parallel text for cross-lingual retrieval checks, read from gettext catalogues.

A gettext ``.mo`` catalogue maps an English message (msgid) to its human translation (msgstr):
the Debian catalogues under ``/usr/share/locale/<l>/LC_MESSAGES/*.mo`` (apt, coreutils, tar, ...
on a full system), and, where those are missing (CI images with the base OS only), the
iso-codes catalogues inside the ``pycountry`` wheel (country, currency and language names).
``parallel_pairs(language, n)`` gives ``n`` (english, translation) pairs of whole sentences,
reproducibly (sorted, then sampled with a seed); ``cross_lingual_fixture`` turns them into a
passage corpus (English, plus the translations as distractors in their own language) and
queries in ``language`` whose one relevant passage is the English original.
"""

from __future__ import annotations

import gettext
import glob
import os
import random
import re

from eurollm_jax.rag.corpus import Passage, Query

SYSTEM_LOCALE_DIR = "/usr/share/locale"
_FORMAT = re.compile(r"%|\{|\}|\\|<|>|\$|_\w|--|\b[A-Z_]{3,}\b|\w+\(\)")


def _pycountry_locale_dir() -> str | None:
    try:
        import pycountry
    except ImportError:
        return None
    d = os.path.join(os.path.dirname(pycountry.__file__), "locales")
    return d if os.path.isdir(d) else None


def catalogue_files(language: str, locale_dir: str | None = None) -> list[str]:
    """The ``.mo`` files of ``language``: the system's, else pycountry's iso-codes."""
    dirs = [locale_dir] if locale_dir else [SYSTEM_LOCALE_DIR, _pycountry_locale_dir()]
    for d in dirs:
        if d:
            files = sorted(glob.glob(os.path.join(d, language, "LC_MESSAGES", "*.mo")))
            if files:
                return files
    return []


def _clean(text: str) -> str:
    return " ".join(text.replace("&", "").split())


def _usable(en: str, tr: str, min_words: int, max_chars: int) -> bool:
    if len(en.split()) < min_words or len(en) > max_chars or len(tr) > 2 * max_chars:
        return False
    if _FORMAT.search(en) or _FORMAT.search(tr) or "\n" in en:
        return False
    return tr.strip() != en.strip()


def parallel_pairs(language: str, n: int, *, min_words: int = 5, max_chars: int = 160,
                   seed: int = 0, locale_dir: str | None = None) -> list[tuple[str, str]]:
    """``n`` (English, ``language``) message pairs of at least ``min_words`` words."""
    files = catalogue_files(language, locale_dir)
    if not files:
        raise FileNotFoundError(
            f"no gettext catalogues for {language!r} under {locale_dir or SYSTEM_LOCALE_DIR} "
            "or pycountry's locales; install the Debian locales or `pycountry`")
    pairs: dict[str, str] = {}
    for path in files:
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except (OSError, UnicodeDecodeError, ValueError):  # an unreadable catalogue
            continue
        for en, tr in catalog.items():
            if not isinstance(en, str) or not en or not isinstance(tr, str):
                continue
            en, tr = _clean(en), _clean(tr)
            if _usable(en, tr, min_words, max_chars):
                pairs.setdefault(en, tr)
    seen_tr: set[str] = set()
    unique = []
    for en in sorted(pairs):
        if pairs[en] not in seen_tr:
            seen_tr.add(pairs[en])
            unique.append((en, pairs[en]))
    if len(unique) < n:
        if min_words > 1:  # short catalogues (iso-codes names): accept shorter messages
            return parallel_pairs(language, n, min_words=1, max_chars=max_chars, seed=seed,
                                  locale_dir=locale_dir)
        raise ValueError(f"only {len(unique)} usable {language!r} message pairs, asked for {n}")
    return random.Random(seed).sample(unique, n)


def cross_lingual_fixture(language: str, n: int, *, seed: int = 0, locale_dir=None,
                          distractors: bool = True):
    """(passages, queries): English passages ``en-<i>``, and (``distractors``) the other half's
    translations as ``<language>`` passages; queries ``q-<i>`` are the translations of the
    first half, each with ``extra["relevant"] = ["en-<i>"]`` (a query in ``language`` whose
    relevant passage is in English)."""
    pairs = parallel_pairs(language, n, seed=seed, locale_dir=locale_dir)
    passages = [Passage(f"en-{i}", en, "en") for i, (en, _) in enumerate(pairs)]
    half = n // 2 if distractors else n
    queries = [Query(f"q-{i}", tr, language, {"relevant": [f"en-{i}"]})
               for i, (_, tr) in enumerate(pairs[:half])]
    if distractors:
        passages += [Passage(f"{language}-{i}", tr, language)
                     for i, (_, tr) in enumerate(pairs) if i >= half]
    return passages, queries
