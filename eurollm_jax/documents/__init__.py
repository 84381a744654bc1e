"""Documents: the one ``Document`` type and the one reader (and shard writer) of document inputs.

The bottom layer under filtering, the tokenizer and data: it imports only the standard
library, ``eurollm_jax.fileio`` and ``eurollm_jax.schema`` (``ReaderConfig`` is a typed config
section), and pyarrow / zstandard / tensorflow_datasets when an input needs them, never a
stage package.

- ``Document`` (``document.py``): id, text, metadata, chat ``messages``, declared ``lang`` /
  ``source`` and the ``line`` it came from; ``drop_reason`` / ``dropped()`` for filtering.
- ``iter_documents(spec, ReaderConfig(...), BadInputReport())`` (``reader.py``): the good
  documents of a JSONL (plain/.gz/.zst), Parquet or ``tfds:NAME[:SPLIT]`` input, bad records
  counted per file with line numbers; ``read_documents``: every record, bad ones as documents
  marked dropped ``input:<code>``. ``expand_inputs`` expands globs; ``input_stem`` names inputs.
- ``ShardWriter`` / ``read_records`` (``writer.py``): atomic, deterministic shard output in
  the formats the reader reads.
"""

from eurollm_jax.documents.document import DROP_REASON, UNKNOWN_LANGUAGE, Document
from eurollm_jax.documents.reader import (
    FILE_SUFFIXES,
    BadInputReport,
    ReaderConfig,
    UnreadableInputError,
    expand_inputs,
    input_format,
    input_stem,
    iter_documents,
    open_binary,
    parse_tfds_spec,
    read_documents,
    record_field,
    tfds_data_source,
)
from eurollm_jax.documents.writer import FORMATS, ShardWriter, output_suffix, read_records

__all__ = [
    "DROP_REASON",
    "FILE_SUFFIXES",
    "FORMATS",
    "UNKNOWN_LANGUAGE",
    "BadInputReport",
    "Document",
    "ReaderConfig",
    "ShardWriter",
    "UnreadableInputError",
    "expand_inputs",
    "input_format",
    "input_stem",
    "iter_documents",
    "open_binary",
    "output_suffix",
    "parse_tfds_spec",
    "read_documents",
    "read_records",
    "record_field",
    "tfds_data_source",
]
