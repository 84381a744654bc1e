"""Readers: JSONL/Parquet/TFDS documents and bad input counted per file with line numbers."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eurollm_jax.data.readers import BadInputReport, ReaderConfig, iter_documents


def write_bad_jsonl(path):
    lines = [
        json.dumps({"text": "good one", "lang": "en"}).encode(),        # 1
        b'{"text": "broken json", "lang": ',                           # 2 malformed
        json.dumps({"lang": "en"}).encode(),                             # 3 missing text
        '{"text": "caf\u00e9", "lang": "fr"}'.encode("latin-1"),        # 4 invalid UTF-8
        b"",                                                             # 5 blank: skipped
        json.dumps([1, 2]).encode(),                                     # 6 not an object
        json.dumps({"text": 42, "lang": "en"}).encode(),                 # 7 not a string
        json.dumps({"text": "", "lang": "en"}).encode(),                 # 8 empty text
        json.dumps({"text": "no language"}).encode(),                    # 9 missing lang
        json.dumps({"text": "Ελληνικά", "lang": "el", "source": "web"}).encode(),  # 10
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_bad_jsonl_lines_are_counted_with_line_numbers(tmp_path):
    write_bad_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    report = BadInputReport()
    docs = []
    for name in ("bad.jsonl", "empty.jsonl"):
        docs += list(iter_documents(str(tmp_path / name), ReaderConfig(), report))
    assert [(d.text, d.lang, d.source, d.line) for d in docs] == [
        ("good one", "en", "bad", 1), ("Ελληνικά", "el", "web", 10)]
    bad = report.files[str(tmp_path / "bad.jsonl")]
    lines = {e["line"]: e["reason"] for e in bad["examples"]}
    assert sorted(lines) == [2, 3, 4, 6, 7, 8, 9]
    assert lines[2].startswith("malformed JSON") and lines[4].startswith("invalid UTF-8")
    assert lines[3] == "missing text field 'text'" and lines[6] == "not a JSON object"
    assert lines[7] == "text field 'text' is not a string" and lines[8] == "empty text"
    assert lines[9] == "missing language field 'lang'"
    assert report.files[str(tmp_path / "empty.jsonl")]["counts"] == {"empty file": 1}
    assert report.total == 8
    summary = report.summary()
    assert "empty.jsonl: empty file: 1" in summary and "line 2 (malformed JSON" in summary


def test_default_language_gzip_and_fields(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "Dia duit", "src": "forum"}) + "\n")
    cfg = ReaderConfig(text_field="body", source_field="src", default_lang="ga")
    docs = list(iter_documents(str(path), cfg))
    assert [(d.text, d.lang, d.source) for d in docs] == [("Dia duit", "ga", "forum")]


def test_parquet_rows(tmp_path):
    table = pa.table({"text": ["Bonjour", None, "Hola"], "lang": ["fr", "fr", "es"]})
    pq.write_table(table, tmp_path / "p.parquet")
    report = BadInputReport()
    docs = list(iter_documents(str(tmp_path / "p.parquet"), ReaderConfig(), report))
    assert [(d.text, d.lang, d.line) for d in docs] == [("Bonjour", "fr", 0), ("Hola", "es", 2)]
    assert report.files[str(tmp_path / "p.parquet")]["examples"] == [
        {"line": 1, "reason": "text field 'text' is not a string"}]


def test_sft_messages(tmp_path):
    path = tmp_path / "sft.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "lang": "en"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"messages": "nope", "lang": "en"}) + "\n")
    report = BadInputReport()
    docs = list(iter_documents(str(path), ReaderConfig(kind="sft"), report))
    assert len(docs) == 1 and docs[0].messages == good["messages"] and docs[0].text is None
    assert report.files[str(path)]["examples"] == [
        {"line": 2, "reason": "missing messages field 'messages'"}]


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown format"):
        list(iter_documents(str(tmp_path / "a.txt")))
    with pytest.raises(FileNotFoundError):
        list(iter_documents(str(tmp_path / "nope.jsonl")))


def test_tfds_builder_gives_random_access_offline(demo_dir, tmp_path):
    from eurollm_jax.fileio import read_jsonl
    from eurollm_jax.data.tfds_jsonl import jsonl_data_source, prepare_jsonl_dataset

    heldout = str(demo_dir / "heldout.jsonl")
    prepare_jsonl_dataset("demo", {"heldout": [heldout]}, str(tmp_path))
    source = jsonl_data_source("demo", str(tmp_path), "heldout")
    expected = read_jsonl(heldout)
    assert len(source) == len(expected)
    record = source[len(source) // 2]
    assert set(record) == {"text", "lang", "source", "id"}
    docs = list(iter_documents("tfds:jsonl_corpus/demo:heldout",
                               ReaderConfig(tfds_data_dir=str(tmp_path))))
    assert sorted((d.text, d.lang, d.source) for d in docs) == sorted(
        (r["text"], r["lang"], r["source"]) for r in expected)


def test_fields_are_found_in_filter_output_metadata(tmp_path):
    """launch.filter keeps a document's original fields under "metadata"."""
    from eurollm_jax.data.readers import record_field

    path = tmp_path / "kept.jsonl"
    path.write_text(json.dumps({"id": "1", "text": "Bonġu", "metadata": {"lang": "mt", "source": "udhr"}}) + "\n")
    report = BadInputReport()
    docs = list(iter_documents(str(path), ReaderConfig(), report))
    assert [(d.lang, d.source) for d in docs] == [("mt", "udhr")]
    assert record_field({"a": {"b": 3}}, "a.b") == 3 and record_field({"a": 1}, "a.b", "x") == "x"
