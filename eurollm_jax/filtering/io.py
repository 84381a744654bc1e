"""The filtering stage's view of its input: ``eurollm_jax.documents`` with the filter's options.

``read_documents(path, text_key, id_key, max_doc_chars, max_line_bytes, keep_chars)`` takes the
``input`` section of the filter config (``pipeline.default_config()["input"]``) and reads every
record of one shard with ``eurollm_jax.documents.read_documents``: bad records (malformed JSON,
invalid UTF-8, no text, empty, over-long, an unreadable or truncated file) come out as
documents already marked dropped ``input:<reason>``, so the filter counts them and writes them to
its dropped output. The filter reads no declared language (language ID labels documents).

``ShardWriter`` and ``read_records`` are ``eurollm_jax.documents``' writer, re-exported for the
``eurollm_jax.filtering`` surface.
"""

from __future__ import annotations

from typing import Iterator

from eurollm_jax import documents
from eurollm_jax.documents import Document, ReaderConfig, ShardWriter, read_records

__all__ = ["ShardWriter", "read_documents", "read_records"]


def read_documents(path: str, text_key: str = "text", id_key: str = "id",
                   max_doc_chars: int = 1_000_000, max_line_bytes: int = 16 << 20,
                   keep_chars: int = 10_000) -> Iterator[Document]:
    """Yields the documents of one shard (ids default to ``<shard>/<row>``), bad ones dropped."""
    config = ReaderConfig(text_field=text_key, id_field=id_key, lang_field=None,
                          source_field=None, max_doc_chars=max_doc_chars,
                          max_line_bytes=max_line_bytes, keep_chars=keep_chars)
    return documents.read_documents(path, config)
