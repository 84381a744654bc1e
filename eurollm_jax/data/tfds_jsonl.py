"""A TFDS ``DatasetBuilder`` for local document files (offline, no TensorFlow needed).

``prepare_jsonl_dataset("demo", {"train": [...], "heldout": [...]}, data_dir)`` writes
ArrayRecord files under ``data_dir/jsonl_corpus/demo/1.0.0``; afterwards
``tfds.data_source("jsonl_corpus/demo", split="train", data_dir=data_dir)`` gives random
access to the documents (features ``text``, ``lang``, ``source``, ``id``), and the
tokenization job reads it as ``tfds:jsonl_corpus/demo:train``. The files are read with
``eurollm_jax.documents.iter_documents`` (JSONL plain/.gz/.zst or Parquet); bad lines are skipped
and counted (``builder.bad_input``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Sequence

import tensorflow_datasets as tfds

from eurollm_jax.documents import BadInputReport, ReaderConfig, iter_documents, tfds_data_source


@dataclasses.dataclass
class JsonlCorpusConfig(tfds.core.BuilderConfig):
    """Which files make each split, and the JSON field names."""

    files: dict = dataclasses.field(default_factory=dict)
    text_field: str = "text"
    lang_field: str = "lang"
    source_field: str = "source"
    default_lang: str | None = None


class JsonlCorpus(tfds.core.GeneratorBasedBuilder):
    """Documents from local files, one split per list of files."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad_input = BadInputReport()

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # No checksums or metadata files live next to this module; returning None keeps
        # TFDS from probing package resources (which needs `importlib_resources`).
        return None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Documents read from local JSONL files (eurollm_jax).",
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "lang": tfds.features.Text(),
                "source": tfds.features.Text(),
                "id": tfds.features.Text(),
            }),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        cfg = self.builder_config
        if not cfg.files:
            raise ValueError("JsonlCorpusConfig.files is empty: give {split: [file paths]}")
        return {split: self._generate_examples(paths) for split, paths in cfg.files.items()}

    def _generate_examples(self, paths: Sequence[str]):
        cfg = self.builder_config
        reader = ReaderConfig(text_field=cfg.text_field, lang_field=cfg.lang_field,
                              source_field=cfg.source_field, default_lang=cfg.default_lang)
        for path in paths:
            for doc in iter_documents(path, reader, self.bad_input):
                key = f"{os.path.basename(path)}:{doc.line}"
                yield key, {"text": doc.text, "lang": doc.lang, "source": doc.source, "id": key}


def prepare_jsonl_dataset(
    name: str,
    files: Mapping[str, Sequence[str]],
    data_dir: str,
    **fields,
) -> JsonlCorpus:
    """Build (once) the TFDS dataset ``jsonl_corpus/<name>`` from ``{split: [paths]}``."""
    missing = [p for paths in files.values() for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"document file(s) not found: {missing[:5]}")
    config = JsonlCorpusConfig(
        name=name, files={k: [os.path.abspath(p) for p in v] for k, v in files.items()},
        **fields,
    )
    builder = JsonlCorpus(config=config, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare()
    return builder


def jsonl_data_source(name: str, data_dir: str, split: str = "train"):
    """Random-access data source of a prepared ``jsonl_corpus/<name>`` split."""
    return tfds_data_source(f"jsonl_corpus/{name}", split, data_dir)
