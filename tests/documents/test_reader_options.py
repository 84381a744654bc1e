"""The reader's options are one typed config section (``ReaderConfig``): coerced from config
values, checked with errors that name the field, frozen, and the same object the jobs embed."""

import dataclasses
import json

import pytest

from eurollm_jax.documents import ReaderConfig, iter_documents
from eurollm_jax.schema import ConfigError, Section


def test_reader_options_are_a_section_built_from_config_values(tmp_path):
    assert issubclass(ReaderConfig, Section)
    cfg = ReaderConfig.from_mapping({"text_field": "body", "lang_field": None,
                                     "default_lang": "ga", "max_doc_chars": "20"}, "reader")
    assert cfg == ReaderConfig(text_field="body", lang_field=None, default_lang="ga",
                               max_doc_chars=20)
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"body": "Dia dhuit"}) + "\n"
                    + json.dumps({"body": "x" * 21, "lang": "en"}) + "\n")
    docs = list(iter_documents(str(path), cfg))
    assert [(d.text, d.lang) for d in docs] == [("Dia dhuit", "ga")]  # the long one is bad input
    assert ReaderConfig.from_mapping(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.kind = "sft"


@pytest.mark.parametrize("values, message", [
    ({"kind": "chat"}, "reader: kind must be 'pretrain' or 'sft', got 'chat'"),
    ({"max_line_bytes": -1}, "reader.max_line_bytes: must be positive (or None: no limit)"),
    ({"keep_chars": "all"}, "reader.keep_chars: expected an integer, got 'all'"),
    ({"id_field": ""}, "reader.id_field: must name a record field"),
    ({"lang_feld": "l"}, 'reader.lang_feld: unknown key; did you mean "lang_field"?'),
])
def test_bad_options_name_the_field(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ReaderConfig.from_mapping(values, "reader")
