"""Evaluation questions from local files in the published layouts: MGSM and MATH500.

- MGSM (google-research/url-nlp ``mgsm/``, also the Hugging Face ``juletxara/mgsm`` files):
  one ``mgsm_<lang>.tsv`` per language, no header, two tab-separated columns: the question
  and the numeric answer (250 lines each). The JSON forms of the same data are read too:
  ``mgsm_<lang>.jsonl`` / ``.json`` records with ``question`` and ``answer_number`` (or a
  numeric ``answer``). ``read_mgsm(path)``: a directory (every ``mgsm_<lang>.*`` in it, or the
  ``languages`` asked for) or one file (language from its name, or ``language=``).
- MATH500 (``HuggingFaceH4/MATH-500`` ``test.jsonl``): records ``{"problem", "solution",
  "answer", "subject", "level", "unique_id"}``; translated copies as one file per language
  (``<anything>_<lang>.jsonl`` or ``<lang>/test.jsonl``) or with a ``language`` field.
  ``read_math500(path)``.

Both return ``EvalQuestion``s (question, gold answer as text, language, id, kind: "number"
for MGSM answers compared numerically, "math" for LaTeX answers). A line that cannot be
read raises ``BenchmarkFormatError`` naming the file, the line and the expected layout.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import re
from typing import Sequence

from eurollm_jax.prm.answers import parse_number

MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
_MGSM_NAME = re.compile(r"mgsm_([A-Za-z-]+)\.(tsv|jsonl|json)$")


class BenchmarkFormatError(ValueError):
    """A benchmark file that is not in the published layout."""


@dataclasses.dataclass(frozen=True)
class EvalQuestion:
    question: str
    answer: str  # the gold answer as text (MGSM: the number as written in the file)
    language: str
    id: str
    kind: str = "number"  # "number" (numeric comparison) | "math" (LaTeX answer)


def _mgsm_file(path: str, language: str) -> list[EvalQuestion]:
    out = []
    if path.endswith(".tsv"):
        with open(path, encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) != 2:
                    raise BenchmarkFormatError(
                        f"{path}:{i}: {len(row)} columns; MGSM TSV lines are 'question<TAB>"
                        "answer' with no header")
                q, a = row[0].strip(), row[1].strip()
                if parse_number(a, "en") is None:
                    raise BenchmarkFormatError(f"{path}:{i}: answer {a!r} is not a number")
                out.append(EvalQuestion(q, a, language, f"mgsm_{language}_{i}"))
        return out
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json") and text.lstrip().startswith("["):
        records = list(enumerate(json.loads(text), 1))
    else:
        records = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise BenchmarkFormatError(f"{path}:{i}: not valid JSON ({e.msg})") from None
    for i, r in records:
        q = r.get("question") if isinstance(r, dict) else None
        a = r.get("answer_number", r.get("answer")) if isinstance(r, dict) else None
        if not isinstance(q, str) or a is None or parse_number(str(a), "en") is None:
            raise BenchmarkFormatError(
                f"{path}:{i}: MGSM JSON records need 'question' and a numeric 'answer_number'")
        out.append(EvalQuestion(q.strip(), str(a), language, f"mgsm_{language}_{i}"))
    return out


def read_mgsm(path: str, languages: Sequence[str] = (), language: str | None = None,
              ) -> list[EvalQuestion]:
    """MGSM questions of a directory or one file (module docstring)."""
    if os.path.isdir(path):
        found = {}
        for f in sorted(glob.glob(os.path.join(path, "mgsm_*"))):
            m = _MGSM_NAME.search(os.path.basename(f))
            if m and m.group(1) not in found:
                found[m.group(1)] = f
        wanted = list(languages) or sorted(found)
        missing = [lang for lang in wanted if lang not in found]
        if missing or not wanted:
            raise FileNotFoundError(
                f"{path}: no mgsm_<lang>.tsv/.jsonl/.json for {missing or 'any language'} "
                f"(found {sorted(found)})")
        return [q for lang in wanted for q in _mgsm_file(found[lang], lang)]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MGSM path {path!r} does not exist")
    m = _MGSM_NAME.search(os.path.basename(path))
    lang = language or (m.group(1) if m else None)
    if lang is None:
        raise BenchmarkFormatError(f"{path}: cannot tell the language from the name (expected "
                                   "mgsm_<lang>.tsv); pass language=")
    return _mgsm_file(path, lang)


def _math_file(path: str, language: str | None) -> list[EvalQuestion]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise BenchmarkFormatError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            if not isinstance(r, dict) or not isinstance(r.get("problem"), str) or \
                    r.get("answer") is None:
                raise BenchmarkFormatError(
                    f"{path}:{i}: MATH500 records need 'problem' and 'answer' (the "
                    "HuggingFaceH4/MATH-500 test.jsonl layout)")
            lang = r.get("language") or language or "en"
            qid = str(r.get("unique_id") or f"{os.path.basename(path)}:{i}")
            out.append(EvalQuestion(r["problem"].strip(), str(r["answer"]), lang, qid, "math"))
    return out


def _language_of(path: str) -> str | None:
    stem = os.path.basename(path).split(".")[0]
    m = re.search(r"[_-]([a-z]{2,3})$", stem)
    if m and m.group(1) not in ("test", "all"):
        return m.group(1)
    parent = os.path.basename(os.path.dirname(path))
    return parent if re.fullmatch(r"[a-z]{2,3}", parent) else None


def read_math500(path: str, languages: Sequence[str] = (), language: str | None = None,
                 ) -> list[EvalQuestion]:
    """MATH500 questions of one JSONL file or a directory of per-language files."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.jsonl"), recursive=True))
        if not files:
            raise FileNotFoundError(f"{path}: no *.jsonl MATH500 files")
        out = [q for f in files for q in _math_file(f, _language_of(f))]
    elif os.path.isfile(path):
        out = _math_file(path, language or _language_of(path))
    else:
        raise FileNotFoundError(f"MATH500 path {path!r} does not exist")
    if languages:
        out = [q for q in out if q.language in languages]
    return out


def first_per_language(questions: Sequence[EvalQuestion], limit: int) -> list[EvalQuestion]:
    """The first ``limit`` questions of each language, in the original order."""
    counts: dict = {}
    out = []
    for q in questions:
        counts[q.language] = counts.get(q.language, 0) + 1
        if counts[q.language] <= limit:
            out.append(q)
    return out
