"""Drop reasons and the composable step protocol of the filtering stage.

Documents are ``eurollm_jax.documents.Document`` (re-exported here): ``(id, text, metadata)``
plus fields the filter does not use. A step is a pure function of a batch of documents:
``step(docs) -> (kept, dropped)`` where every dropped document carries ``drop_reason`` (and
the step that dropped it) in its metadata; steps never raise on bad input documents. Per-document
steps subclass ``DocumentFilter`` and implement ``filter(doc) -> None | reason`` (they may
rewrite ``doc.text``, like C4's line filter or PII redaction, or add metadata, like language ID).
``Pipeline`` chains steps and counts what each one kept and dropped per language.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

from eurollm_jax.documents import UNKNOWN_LANGUAGE, Document

__all__ = ["UNKNOWN_LANGUAGE", "Counters", "Document", "DocumentFilter", "Pipeline", "Step"]


class Counters(collections.Counter):
    """``(step, language, outcome) -> count`` where outcome is ``"in"`` or a drop reason."""

    def add(self, step: str, language: str, outcome: str, n: int = 1) -> None:
        self[(step, language, outcome)] += n


class Step:
    """A batch step: ``__call__(docs, counters) -> (kept, dropped)``."""

    name = "step"

    def __call__(self, docs: Sequence[Document], counters: Counters | None = None
                 ) -> tuple[list[Document], list[Document]]:
        raise NotImplementedError

    def setup(self) -> None:
        """Loads models or tables; called once per worker process before the first batch."""


class DocumentFilter(Step):
    """A per-document step: ``filter(doc)`` returns None to keep or a reason to drop."""

    def filter(self, doc: Document) -> str | None:
        raise NotImplementedError

    def __call__(self, docs, counters=None):
        kept, dropped = [], []
        for doc in docs:
            try:
                reason = self.filter(doc)
            except Exception as e:  # a malformed document must never crash a shard
                reason = f"error_{type(e).__name__}"
            if counters is not None:
                counters.add(self.name, doc.language, "in")
            if reason is None:
                kept.append(doc)
            else:
                dropped.append(doc.dropped(self.name, reason))
                if counters is not None:
                    counters.add(self.name, doc.language, reason)
        return kept, dropped


class Pipeline(Step):
    """Runs steps in order; a document dropped by one step skips the rest."""

    name = "pipeline"

    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            for step in self.steps:
                step.setup()
            self._ready = True

    def __call__(self, docs, counters=None):
        self.setup()
        kept = list(docs)
        dropped: list[Document] = []
        for step in self.steps:
            if not kept:
                break
            kept, d = step(kept, counters)
            dropped.extend(d)
        return kept, dropped

    def __repr__(self) -> str:
        return f"Pipeline({[s.name for s in self.steps]})"
