"""The SFT record schema: every form validated, compressed shards and globs read, the
rendered mask equal to the ChatML template's."""

import gzip
import json

import pytest

from eurollm_jax.data.sft import (SFTRecordError, read_sft_records, record_source,
                                  render_sft_record, sft_files, validate_sft_record)
from eurollm_jax.tokenizer import ByteTokenizer, chat_template

CONV = {"messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "hi"},
                     {"role": "assistant", "content": "hello"}], "language": "en"}


def test_compressed_shards_globs_and_lists_are_read_in_file_order(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    (tmp_path / "d").mkdir()
    with gzip.open(tmp_path / "d" / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(CONV) + "\n\n")
    raw = (json.dumps({**CONV, "source": "z"}) + "\n").encode()
    (tmp_path / "d" / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    (tmp_path / "c.jsonl").write_text(json.dumps({"tokens": [5, 6], "loss_mask": [0, 1]}) + "\n")
    spec = f"{tmp_path / 'd'},{tmp_path / '*.jsonl'}"
    assert [p.rsplit("/", 1)[1] for p in sft_files(spec)] == ["c.jsonl", "a.jsonl.gz",
                                                              "b.jsonl.zst"]
    records = read_sft_records(spec)
    assert [record_source(r) for r in records] == ["sft", "sft", "z"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        sft_files(str(tmp_path / "empty"))


def test_rendering_is_the_chat_template_and_checks_the_vocabulary():
    tok = ByteTokenizer()
    validate_sft_record(CONV)
    assert render_sft_record(tok, CONV) == chat_template.render_ids(tok, CONV["messages"])
    record = {"tokens": [1, 2, 3], "loss_mask": [0, 1, 1]}
    assert render_sft_record(tok, record) == ([1, 2, 3], [0, 1, 1])
    with pytest.raises(SFTRecordError, match="vocabulary size"):
        render_sft_record(tok, {"tokens": [1, 10**6], "loss_mask": [0, 1]})
    for bad in ([], {"tokens": [1, 2], "loss_mask": [0, 0]}, {"tokens": [1, -2], "loss_mask": [0, 1]},
                {"messages": [{"role": "assistant"}]}):
        with pytest.raises(SFTRecordError, match="SFT record here"):
            validate_sft_record(bad, "here")
