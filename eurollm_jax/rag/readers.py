"""Readers for the multilingual QA sets in their published layouts, from local files.

- MKQA (``mkqa.jsonl`` or ``.jsonl.gz``): one example a line, ``{"example_id", "query",
  "queries": {lang: question}, "answers": {lang: [{"type", "text", "aliases": [...]}]}}``;
  one ``Query`` per (example, language) with ``id`` "<example_id>-<lang>"; gold strings are each
  answer's ``text`` and ``aliases``; examples whose answers in that language are all
  unanswerable (type "unanswerable" or no text) are skipped.
- MLQA (``MLQA_V1/<split>/<split>-context-<c>-question-<q>.json``, SQuAD v1 JSON): the
  question language is ``<q>`` from the file name (or ``language=``); golds: the answer texts.
  ``mlqa_passages`` gives the contexts as passages (language ``<c>``).
- XOR-TyDi QA (``xor_dev_full_v1_1.jsonl`` etc.): ``{"id", "question", "answers": [...],
  "lang"}`` per line.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import Counter
from typing import Iterable

from eurollm_jax.rag.corpus import CorpusError, Passage, Query

FORMATS = ("mkqa", "mlqa", "xor_tydi")
_MLQA_NAME = re.compile(r"context-([a-z]{2})-question-([a-z]{2})\.json$")


def _open(path: str):
    if not os.path.exists(path):
        raise CorpusError(f"{path}: no such file")
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else \
        open(path, encoding="utf-8")


def _jsonl(path: str) -> Iterable[tuple[int, dict]]:
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{path}:{n}: not valid JSON ({e.msg})") from e


def _limited(queries, limit):
    if not limit:
        return queries
    seen: Counter = Counter()
    out = []
    for q in queries:
        if seen[q.language] < limit:
            seen[q.language] += 1
            out.append(q)
    return out


def read_mkqa(path: str, languages=None, limit=None) -> list[Query]:
    out = []
    for n, ex in _jsonl(path):
        try:
            queries, answers = ex["queries"], ex["answers"]
            ex_id = str(ex["example_id"])
        except KeyError as e:
            raise CorpusError(f"{path}:{n}: MKQA example without {e}; expected keys "
                              "example_id, queries, answers") from e
        for lang, question in queries.items():
            if languages and lang not in languages:
                continue
            golds = []
            for a in answers.get(lang, []):
                if a.get("type") == "unanswerable" or not a.get("text"):
                    continue
                golds += [a["text"]] + list(a.get("aliases") or [])
            if golds and question:
                out.append(Query(f"{ex_id}-{lang}", question, lang,
                                 {"answers": golds, "dataset": "mkqa"}))
    return _limited(out, limit)


def _mlqa_languages(path: str, language):
    m = _MLQA_NAME.search(os.path.basename(path))
    if m is None and language is None:
        raise CorpusError(f"{path}: cannot tell the MLQA languages from the file name (expected "
                          "...-context-<c>-question-<q>.json); pass language=")
    return (m.group(1) if m else language), (language or m.group(2))


def _squad(path: str) -> dict:
    with _open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}: not valid JSON ({e.msg})") from e
    if "data" not in data:
        raise CorpusError(f"{path}: not SQuAD-format JSON (no 'data' key)")
    return data


def read_mlqa(path: str, languages=None, limit=None, language=None) -> list[Query]:
    _, q_lang = _mlqa_languages(path, language)
    if languages and q_lang not in languages:
        return []
    out = []
    for article in _squad(path)["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                golds = [a["text"] for a in qa.get("answers", []) if a.get("text")]
                if golds:
                    out.append(Query(str(qa["id"]), qa["question"], q_lang,
                                     {"answers": golds, "dataset": "mlqa"}))
    return _limited(out, limit)


def mlqa_passages(path: str, language=None) -> list[Passage]:
    c_lang, _ = _mlqa_languages(path, language)
    out, seen = [], set()
    for a, article in enumerate(_squad(path)["data"]):
        for p, para in enumerate(article["paragraphs"]):
            if para["context"] not in seen:
                seen.add(para["context"])
                out.append(Passage(f"mlqa-{c_lang}-{a}-{p}", para["context"], c_lang,
                                   article.get("title", "")))
    return out


def read_xor_tydi(path: str, languages=None, limit=None) -> list[Query]:
    out = []
    for n, ex in _jsonl(path):
        try:
            q = Query(str(ex["id"]), ex["question"], ex["lang"],
                      {"answers": [str(a) for a in ex["answers"]], "dataset": "xor_tydi"})
        except KeyError as e:
            raise CorpusError(f"{path}:{n}: XOR-TyDi example without {e}; expected keys id, "
                              "question, answers, lang") from e
        if (not languages or q.language in languages) and q.extra["answers"]:
            out.append(q)
    return _limited(out, limit)


def read(fmt: str, path: str, *, languages=None, limit=None) -> list[Query]:
    readers = {"mkqa": read_mkqa, "mlqa": read_mlqa, "xor_tydi": read_xor_tydi}
    if fmt not in readers:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    queries = readers[fmt](path, languages=languages, limit=limit)
    if not queries:
        raise CorpusError(f"{path}: no {fmt} questions" + (f" in {languages}" if languages
                                                           else ""))
    return queries
