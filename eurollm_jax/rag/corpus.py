"""Passages and queries of the RAG stage: the jsonl layouts, read and validated once.

Passages: one JSON object a line, ``{"id": str, "text": str, "language": str, "title": str?}``
(``language`` an ISO 639-1 code). Queries: ``{"id": str, "text": str, "language": str}`` plus
any extra keys (``answers``, ``relevant``: kept for scoring). A bad line fails before anything
is built, with an error naming the file, the line and the fix.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable


class CorpusError(ValueError):
    """A passage or query file that cannot be used; the message names the line and the fix."""


@dataclasses.dataclass(frozen=True)
class Passage:
    id: str
    text: str
    language: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """What retrievers index: the title (when there is one) and the text."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def to_dict(self) -> dict:
        d = {"id": self.id, "text": self.text, "language": self.language}
        if self.title:
            d["title"] = self.title
        return d


@dataclasses.dataclass(frozen=True)
class Query:
    id: str
    text: str
    language: str
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "language": self.language, **self.extra}


def _lines(path: str) -> Iterable[tuple[int, dict]]:
    try:
        handle = open(path, encoding="utf-8")
    except OSError as e:
        raise CorpusError(f"{path}: cannot open ({e.strerror}); pass an existing jsonl file") from e
    with handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{n}: not valid JSON ({e.msg}); write one JSON "
                                  "object per line") from e
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{n}: expected a JSON object, got "
                                  f"{type(record).__name__}")
            yield n, record


def _field(record: dict, key: str, where: str, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise CorpusError(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def _check_unique(ids: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise CorpusError(f"{path}: duplicate {what} id {i!r}; ids must be unique")
        seen.add(i)


def passage_from_dict(record: dict, where: str = "passage") -> Passage:
    return Passage(id=str(_field(record, "id", where)), text=_field(record, "text", where),
                   language=_field(record, "language", where),
                   title=_field(record, "title", where, required=False))


def read_passages(path: str) -> list[Passage]:
    passages = [passage_from_dict(r, f"{path}:{n}") for n, r in _lines(path)]
    if not passages:
        raise CorpusError(f"{path}: no passages; write lines like "
                          '{"id": "p1", "text": "...", "language": "de"}')
    _check_unique([p.id for p in passages], path, "passage")
    return passages


def read_queries(path: str) -> list[Query]:
    queries = []
    for n, r in _lines(path):
        where = f"{path}:{n}"
        queries.append(Query(id=str(_field(r, "id", where)), text=_field(r, "text", where),
                             language=_field(r, "language", where),
                             extra={k: v for k, v in r.items()
                                    if k not in ("id", "text", "language")}))
    if not queries:
        raise CorpusError(f"{path}: no queries; write lines like "
                          '{"id": "q1", "text": "...", "language": "de"}')
    _check_unique([q.id for q in queries], path, "query")
    return queries
