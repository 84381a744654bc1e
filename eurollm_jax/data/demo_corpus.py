"""The offline multilingual demo corpus: real text that ships inside installed packages.

Nothing here downloads. The corpus is assembled from:

- ``udhr``: Universal Declaration of Human Rights passages for all 24 EU languages, from the
  ``gflanguages`` package (its ``sample_text`` fields; about 0.4-1.7 KB per language).
- ``spacy``: the example sentences of ``spacy/lang/<l>/examples.py`` (20 EU languages; read
  with ``ast``, spaCy is not imported).
- ``iso_codes``: country and language names translated in Debian's ``iso-codes`` catalogues
  (``/usr/share/locale/<l>/LC_MESSAGES/iso_3166-1.mo`` / ``iso_639-2.mo``), when present.
- ``gettext``: translated user-interface messages of the programs installed on a Debian system
  (other ``.mo`` catalogues under ``/usr/share/locale``; English uses their msgids), when
  present. Printf-style templates are skipped.

``wordfreq`` lists are deliberately not used: they are case-folded and normalised (Greek final
sigma becomes sigma), so they are not faithful text.

The sources that need Debian files are optional: ``build`` records in ``stats.json`` which
sources were found, so a corpus built on a machine without them is smaller but still covers
all 24 languages (UDHR). Documents are split into ``train.jsonl`` and ``heldout.jsonl``
deterministically (a stable hash of the text), with at least one held-out document per
(language, source) that has two or more documents.
"""

from __future__ import annotations

import ast
import gettext
import hashlib
import importlib.util
import os
import re
import time
from typing import Iterable, Sequence

from eurollm_jax.fileio import write_json, write_jsonl
from eurollm_jax.languages import EU_LANGUAGES, gflanguages_key, load_gflanguages

SOURCES: tuple[str, ...] = ("udhr", "spacy", "iso_codes", "gettext")
DEFAULT_LOCALE_DIR = "/usr/share/locale"
_ISO_CATALOGS = ("iso_3166-1.mo", "iso_639-2.mo")
_SKIP_CATALOG_PREFIXES = ("iso_",)
_TEMPLATE_RE = re.compile(r"%|\{|\}|\\|`|<[a-z/]|\t|\$\(|--?[a-z]")


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "little")


def _chunk(items: Iterable[str], max_chars: int, sep: str) -> list[str]:
    """Greedily join items into documents of at most ``max_chars`` characters."""
    docs, current, size = [], [], 0
    for item in items:
        if current and size + len(sep) + len(item) > max_chars:
            docs.append(sep.join(current))
            current, size = [], 0
        current.append(item)
        size += len(item) + (len(sep) if len(current) > 1 else 0)
    if current:
        docs.append(sep.join(current))
    return docs


# ----------------------------------------------------------------------------- sources


def udhr_documents(lang: str) -> list[str]:
    """UDHR paragraphs for ``lang`` from gflanguages (unique lines, prefixes dropped)."""
    entry = load_gflanguages().get(gflanguages_key(lang))
    if entry is None:
        return []
    lines: list[str] = []
    for _, value in entry.sample_text.ListFields():
        for line in value.split("\n"):
            line = " ".join(line.split())
            if len(line.split()) >= 3 and line not in lines:
                lines.append(line)
    # Shorter fields are prefixes of longer ones (poster/specimen sizes): keep maximal lines.
    return [line for line in lines if not any(line != other and line in other for other in lines)]


def _spacy_lang_dir() -> str | None:
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "lang")


def spacy_documents(lang: str) -> list[str]:
    """spaCy's example sentences for ``lang`` (parsed with ``ast``; spaCy is not imported)."""
    base = _spacy_lang_dir()
    if base is None:
        return []
    path = os.path.join(base, lang, "examples.py")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "sentences" for t in node.targets
        ):
            try:
                values = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [" ".join(str(v).split()) for v in values if str(v).strip()]
    return []


def _catalog(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return gettext.GNUTranslations(f)._catalog  # noqa: SLF001 (the parsed .mo table)
    except Exception:  # a truncated or foreign catalogue: skip it
        return {}


def _catalog_dir(lang: str, locale_dir: str) -> str:
    """Where ``lang``'s catalogues are; English reads the German ones for their msgids."""
    return os.path.join(locale_dir, "de" if lang == "en" else lang, "LC_MESSAGES")


def iso_codes_documents(lang: str, locale_dir: str = DEFAULT_LOCALE_DIR) -> list[str]:
    """Country and language names in ``lang`` from Debian's iso-codes catalogues."""
    docs = []
    for name in _ISO_CATALOGS:
        path = os.path.join(_catalog_dir(lang, locale_dir), name)
        if not os.path.exists(path):
            continue
        cat = _catalog(path)
        names = [
            " ".join((k if lang == "en" else v).split())
            for k, v in cat.items()
            if isinstance(k, str) and k and isinstance(v, str)
        ]
        docs.extend(_chunk(names, 600, ", "))
    return docs


def _is_prose(msg: str) -> bool:
    words = msg.split()
    if len(words) < 4 or len(msg) < 24 or _TEMPLATE_RE.search(msg):
        return False
    letters = sum(ch.isalpha() for ch in msg)
    return letters >= 0.7 * len(msg.replace(" ", ""))


def gettext_documents(
    lang: str, max_chars: int = 60_000, locale_dir: str = DEFAULT_LOCALE_DIR
) -> list[str]:
    """Translated program messages in ``lang`` (English: the msgids), at most ``max_chars``."""
    directory = _catalog_dir(lang, locale_dir)
    if not os.path.isdir(directory):
        return []
    files = sorted(
        f for f in os.listdir(directory)
        if f.endswith(".mo") and not f.startswith(_SKIP_CATALOG_PREFIXES)
    )
    if not files:
        return []
    per_file = max(max_chars // len(files), 2_000)
    seen: set[str] = set()
    docs: list[str] = []
    total = 0
    for name in files:
        cat = _catalog(os.path.join(directory, name))
        msgs, size = [], 0
        for key, value in cat.items():
            if not isinstance(key, str) or not key or not isinstance(value, str):
                continue
            msg = key if lang == "en" else value
            if lang != "en" and value == key:
                continue  # untranslated
            msg = msg.strip()
            if msg in seen or not _is_prose(msg):
                continue
            seen.add(msg)
            msgs.append(msg)
            size += len(msg) + 1
            if size >= per_file or total + size >= max_chars:
                break
        docs.extend(_chunk(msgs, 800, "\n"))
        total += size
        if total >= max_chars:
            break
    return docs


# ----------------------------------------------------------------------------- build


def collect_documents(
    languages: Sequence[str] = EU_LANGUAGES,
    sources: Sequence[str] = SOURCES,
    gettext_chars_per_language: int = 60_000,
    locale_dir: str = DEFAULT_LOCALE_DIR,
) -> list[dict]:
    """All demo documents as ``{"text", "lang", "source"}`` dicts (deduplicated, in order)."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown demo corpus source(s) {unknown}; choose from {SOURCES}")
    out, seen = [], set()
    for lang in languages:
        for source in sources:
            if source == "udhr":
                texts = udhr_documents(lang)
            elif source == "spacy":
                texts = spacy_documents(lang)
            elif source == "iso_codes":
                texts = iso_codes_documents(lang, locale_dir)
            else:
                texts = gettext_documents(lang, gettext_chars_per_language, locale_dir)
            for text in texts:
                if text and text not in seen:
                    seen.add(text)
                    out.append({"text": text, "lang": lang, "source": source})
    return out


def split_heldout(docs: Sequence[dict], heldout_fraction: float = 0.1) -> tuple[list, list]:
    """Deterministic split by a stable text hash, per (lang, source) group.

    Each group with n >= 2 documents gives max(1, round(fraction * n)) held-out documents:
    those with the smallest hashes. Order within each split follows the input order.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    groups: dict[tuple[str, str], list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault((d["lang"], d["source"]), []).append(i)
    held: set[int] = set()
    for idx in groups.values():
        if len(idx) < 2 or heldout_fraction == 0.0:
            continue
        k = max(1, round(heldout_fraction * len(idx)))
        held.update(sorted(idx, key=lambda i: _stable_hash(docs[i]["text"]))[:k])
    train = [d for i, d in enumerate(docs) if i not in held]
    heldout = [d for i, d in enumerate(docs) if i in held]
    return train, heldout


def build(
    output_dir: str,
    languages: Sequence[str] = EU_LANGUAGES,
    sources: Sequence[str] = SOURCES,
    heldout_fraction: float = 0.1,
    gettext_chars_per_language: int = 60_000,
    locale_dir: str = DEFAULT_LOCALE_DIR,
) -> dict:
    """Write ``train.jsonl``, ``heldout.jsonl`` and ``stats.json`` under ``output_dir``.

    Each line is ``{"id", "text", "lang", "source"}``. Returns the stats dict (documents and
    characters per language and source, for each split, and the sources found).
    """
    start = time.perf_counter()
    docs = collect_documents(languages, sources, gettext_chars_per_language, locale_dir)
    for d in docs:
        d["id"] = f"{d['lang']}-{d['source']}-{_stable_hash(d['text']):016x}"
    train, heldout = split_heldout(docs, heldout_fraction)
    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    stats: dict = {"splits": {}, "languages": list(languages)}
    for split, records in (("train", train), ("heldout", heldout)):
        path = os.path.join(output_dir, f"{split}.jsonl")
        write_jsonl(path, ({k: d[k] for k in ("id", "text", "lang", "source")} for d in records))
        paths[split] = path
        table: dict = {}
        for d in records:
            cell = table.setdefault(d["lang"], {}).setdefault(d["source"], {"docs": 0, "chars": 0})
            cell["docs"] += 1
            cell["chars"] += len(d["text"])
        stats["splits"][split] = {
            "docs": len(records),
            "chars": sum(len(d["text"]) for d in records),
            "by_language": table,
        }
    stats["sources_found"] = sorted({d["source"] for d in docs})
    stats["missing_languages"] = sorted(set(languages) - {d["lang"] for d in docs})
    stats["seconds"] = round(time.perf_counter() - start, 3)
    stats["paths"] = paths
    write_json(os.path.join(output_dir, "stats.json"), stats)
    return stats
