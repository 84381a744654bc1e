"""The filtering stage's view of its input: ``eurollm_jax.documents`` with the filter's options.

``read_documents(path, options)`` reads every record of one shard with
``eurollm_jax.documents.read_documents``, the options being the filter config's ``input``
section (``config.FilterInput``: the reader's options with the filter's limits; keyword
arguments replace single fields, ``read_documents(path, keep_chars=100)``): bad records
(malformed JSON, invalid UTF-8, no text, empty, over-long, an unreadable or truncated file)
come out as documents already marked dropped ``input:<reason>``, so the filter counts them and
writes them to its dropped output. The filter reads no declared language (language ID labels
documents).

``ShardWriter`` and ``read_records`` are ``eurollm_jax.documents``' writer, re-exported for the
``eurollm_jax.filtering`` surface.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from eurollm_jax import documents
from eurollm_jax.documents import Document, ShardWriter, read_records
from eurollm_jax.filtering.config import FilterInput

__all__ = ["ShardWriter", "read_documents", "read_records"]


def read_documents(path: str, options: FilterInput | None = None, **fields) -> Iterator[Document]:
    """Yields the documents of one shard (ids default to ``<shard>/<row>``), bad ones dropped."""
    options = options or FilterInput()
    if fields:
        options = dataclasses.replace(options, **fields)
    return documents.read_documents(path, options)
