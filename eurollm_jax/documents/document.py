"""The one ``Document`` type every stage passes around (filtering, tokenizer training,
tokenization), and its record form.

A document is one record of an input: ``id``, ``text`` (``None`` for a chat conversation, whose
turns are in ``messages``), ``metadata`` (every other field of the record, plus labels that
stages add, e.g. the filter's ``language`` and ``drop_reason``), and where the reader found it
and what it routes to: ``lang`` (the language the record declares, see ``ReaderConfig``),
``source`` and ``line``. ``eurollm_jax.documents.reader`` builds documents from records;
``to_record`` is the inverse that ``ShardWriter`` writes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

DROP_REASON = "drop_reason"
UNKNOWN_LANGUAGE = "unknown"


@dataclasses.dataclass
class Document:
    """One document. ``metadata`` holds everything else of the input record plus labels.

    ``lang`` is the language the input record declares (``ReaderConfig.lang_field`` or its
    default; ``None`` when the reader was told not to look for one, as in filtering, where
    language ID labels ``metadata["language"]``). ``language`` is the best label known: the
    language ID label, else ``lang``, else ``"unknown"``. ``line`` is the record's position in
    its input: the 1-based line of a JSONL file, the 0-based row of Parquet and TFDS.
    """

    id: str
    text: str | None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    messages: list[dict[str, str]] | None = None
    lang: str | None = None
    source: str | None = None
    line: int | None = None

    @property
    def language(self) -> str:
        return self.metadata.get("language") or self.lang or UNKNOWN_LANGUAGE

    @property
    def drop_reason(self) -> str | None:
        return self.metadata.get(DROP_REASON)

    def dropped(self, step: str, reason: str) -> "Document":
        """Marks this document dropped by ``step`` for ``reason`` (``"step:reason"``)."""
        self.metadata[DROP_REASON] = f"{step}:{reason}"
        return self

    def to_record(self, text_key: str = "text", id_key: str = "id") -> dict[str, Any]:
        """``{id, text, [drop_reason], metadata}``, a conversation ``{id, metadata, messages}``:
        what the reader reads back as this document (``metadata`` fields stay nested; the
        reader looks there for the language and source too)."""
        record: dict[str, Any] = {id_key: self.id}
        if self.messages is None or self.text is not None:
            record[text_key] = self.text
        meta = dict(self.metadata)
        if DROP_REASON in meta:
            record[DROP_REASON] = meta.pop(DROP_REASON)
        record["metadata"] = meta
        if self.messages is not None:
            record["messages"] = self.messages
        return record
