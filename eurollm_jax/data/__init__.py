"""Data stage: demo corpus, document readers, tokenization to ArrayRecord, the Grain pipeline.

- ``demo_corpus.build(output_dir)``: real multilingual text shipped in installed packages
  (UDHR in all 24 EU languages, spaCy examples, Debian catalogues) as train/held-out JSONL.
- ``tokenize_job.run(TokenizeConfig(...))``: documents (read by ``eurollm_jax.documents``:
  JSONL plain/.gz/.zst, Parquet, TFDS) -> ArrayRecord token shards per (language, source),
  resumable, with a manifest (``python -m launch.tokenize``).
- ``sft``: the SFT record schema every SFT source writes (conversations or pre-rendered
  tokens with their loss mask, a ``source`` mixture key): ``read_sft_records``,
  ``validate_sft_record``, ``render_sft_record``.
- ``tfds_jsonl.prepare_jsonl_dataset(...)``: a TFDS builder over local document files.
- ``pipeline.make_iterator(PipelineConfig(...)[, {name: InMemoryRecords(docs)}])``: token
  shards of a manifest, or in-memory token corpora -> mixture -> packing -> host batches with
  checkpointable state and live mixture weights (host batches go onto a mesh with
  ``eurollm_jax.parallel.make_global_batch``).
"""

from eurollm_jax.languages import EU_LANGUAGES, EUROLLM_LANGUAGES
from eurollm_jax.data.pipeline import (
    BATCH_KEYS,
    DataIterator,
    MixtureError,
    PipelineConfig,
    build_dataset,
    make_iterator,
    resolve_weights,
)
from eurollm_jax.data.records import (
    InMemoryRecords,
    ShardedRecords,
    decode_record,
    encode_record,
)
from eurollm_jax.data.sft import (
    SFTRecordError,
    read_sft_records,
    render_sft_record,
    validate_sft_record,
)
from eurollm_jax.data.tokenize_job import (
    TokenizeConfig,
    build_manifest,
    load_manifest,
    source_name,
)
from eurollm_jax.data.tokenize_job import run as tokenize

__all__ = [
    "EU_LANGUAGES",
    "EUROLLM_LANGUAGES",
    "BATCH_KEYS",
    "DataIterator",
    "MixtureError",
    "PipelineConfig",
    "build_dataset",
    "make_iterator",
    "resolve_weights",
    "InMemoryRecords",
    "ShardedRecords",
    "decode_record",
    "encode_record",
    "SFTRecordError",
    "read_sft_records",
    "render_sft_record",
    "validate_sft_record",
    "TokenizeConfig",
    "build_manifest",
    "load_manifest",
    "source_name",
    "tokenize",
]
