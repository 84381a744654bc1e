"""The reader: every format, record -> Document, bad input counted per file with line numbers
(``iter_documents``) or kept as dropped documents (``read_documents``), input expansion."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from eurollm_jax.documents import (
    BadInputReport,
    ReaderConfig,
    UnreadableInputError,
    expand_inputs,
    input_format,
    input_stem,
    iter_documents,
    read_documents,
    record_field,
)


def write_bad_jsonl(path):
    """Ten lines: two good documents (lines 1 and 10), a blank one and seven problems."""
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
    data = b"\n".join(lines) + b"\n"
    name = str(path)
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


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


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst", ".json.gz", ".json"])
def test_compressed_inputs_count_the_same_problems(tmp_path, suffix):
    write_bad_jsonl(tmp_path / "plain.jsonl")
    write_bad_jsonl(tmp_path / f"bad{suffix}")
    plain, other = BadInputReport(), BadInputReport()
    expected = [(d.text, d.lang, d.line) for d in
                iter_documents(str(tmp_path / "plain.jsonl"), ReaderConfig(), plain)]
    got = [(d.text, d.lang, d.line) for d in
           iter_documents(str(tmp_path / f"bad{suffix}"), ReaderConfig(), other)]
    assert got == expected == [("good one", "en", 1), ("Ελληνικά", "el", 10)]
    assert other.files[str(tmp_path / f"bad{suffix}")] == plain.files[str(tmp_path / "plain.jsonl")]


def test_read_documents_keeps_every_record_with_its_reason(tmp_path):
    """The same file through ``read_documents``: one document per record, in order, bad ones
    marked ``input:<code>`` with ``<stem>/<row>`` ids (row 0-based, blank lines counted)."""
    write_bad_jsonl(tmp_path / "bad.jsonl")
    report = BadInputReport()
    docs = list(read_documents(str(tmp_path / "bad.jsonl"), ReaderConfig(), report))
    assert [(d.id, d.drop_reason) for d in docs] == [
        ("bad/0", None), ("bad/1", "input:malformed_json"), ("bad/2", "input:missing_text"),
        ("bad/3", "input:invalid_utf8"), ("bad/5", "input:malformed_json"),
        ("bad/6", "input:missing_text"), ("bad/7", "input:empty_document"),
        ("bad/8", "input:missing_language"), ("bad/9", None)]
    assert report.total == 7  # the same problems as iter_documents counts
    assert docs[1].text == '{"text": "broken json", "lang": '  # the raw line, for inspection


def test_default_language_gzip_and_fields(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "Dia duit", "src": "forum", "key": 9}) + "\n")
    cfg = ReaderConfig(text_field="body", source_field="src", id_field="key", default_lang="ga")
    docs = list(iter_documents(str(path), cfg))
    assert [(d.text, d.lang, d.source, d.id) for d in docs] == [("Dia duit", "ga", "forum", "9")]
    assert docs[0].metadata == {"src": "forum"}


def test_parquet_rows(tmp_path):
    table = pa.table({"text": ["Bonjour", None, "Hola"], "lang": ["fr", "fr", "es"]})
    pq.write_table(table, tmp_path / "p.parquet")
    report = BadInputReport()
    docs = list(iter_documents(str(tmp_path / "p.parquet"), ReaderConfig(), report))
    assert [(d.text, d.lang, d.line) for d in docs] == [("Bonjour", "fr", 0), ("Hola", "es", 2)]
    assert report.files[str(tmp_path / "p.parquet")]["examples"] == [
        {"line": 1, "reason": "text field 'text' is not a string"}]
    pq.write_table(table.slice(0, 0), tmp_path / "none.parquet")
    report = BadInputReport()
    assert list(iter_documents(str(tmp_path / "none.parquet"), ReaderConfig(), report)) == []
    assert report.files[str(tmp_path / "none.parquet")]["counts"] == {"empty file": 1}


def test_sft_messages(tmp_path):
    path = tmp_path / "sft.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            "lang": "en"}
    half = {"messages": [{"role": "user"}], "lang": "en"}
    path.write_text("\n".join(json.dumps(r) for r in (
        good, {"messages": "nope", "lang": "en"}, half)) + "\n")
    report = BadInputReport()
    docs = list(iter_documents(str(path), ReaderConfig(kind="sft"), report))
    assert len(docs) == 1 and docs[0].messages == good["messages"] and docs[0].text is None
    assert report.files[str(path)]["examples"] == [
        {"line": 2, "reason": "missing messages field 'messages'"},
        {"line": 3, "reason": "messages must be {role, content} string pairs"}]
    with pytest.raises(ValueError, match="kind must be 'pretrain' or 'sft'"):
        ReaderConfig(kind="chat")


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown format"):
        list(iter_documents(str(tmp_path / "a.txt")))
    with pytest.raises(FileNotFoundError):
        list(iter_documents(str(tmp_path / "nope.jsonl")))
    with pytest.raises(FileNotFoundError):
        list(read_documents(str(tmp_path / "nope.jsonl.zst")))


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst"])
def test_truncated_stream_is_an_error_for_iter_and_a_drop_for_read(tmp_path, name):
    good = "\n".join(json.dumps({"id": str(i), "text": "t" * 200, "lang": "en"})
                     for i in range(200)) + "\n"
    blob = (gzip.compress(good.encode()) if name.endswith(".gz")
            else zstandard.ZstdCompressor().compress(good.encode()))
    path = tmp_path / name
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UnreadableInputError, match="cannot be read to its end"):
        list(iter_documents(str(path)))
    docs = list(read_documents(str(path)))
    assert docs[-1].drop_reason == "input:unreadable_shard_tail"
    assert docs[-1].id == f"cut/{len(docs) - 1}"
    assert all(d.drop_reason is None for d in docs[:-1])


def test_corrupt_parquet(tmp_path):
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(UnreadableInputError, match="unreadable file"):
        list(iter_documents(str(tmp_path / "junk.parquet")))
    docs = list(read_documents(str(tmp_path / "junk.parquet")))
    assert [(d.id, d.drop_reason) for d in docs] == [("junk/file", "input:unreadable_shard")]


def test_edge_cases_bom_whitespace_surrogates_nesting_and_limits(tmp_path):
    path = tmp_path / "edge.jsonl"
    lines = [
        b"\xef\xbb\xbf" + json.dumps({"text": "after a BOM", "lang": "de"}).encode(),  # 1
        json.dumps({"text": " \n\t ", "lang": "de"}).encode(),          # 2 whitespace only
        b'{"text": "half a pair \\ud800 here", "lang": "de"}',          # 3 lone surrogate
        b"[" * 5000 + b"]" * 5000,                                         # 4 nested too deeply
        json.dumps({"text": "x" * 300, "lang": "de"}).encode(),         # 5 too long a text
        json.dumps({"text": "y" * 30000, "lang": "de"}).encode(),       # 6 too long a line
        json.dumps({"text": "last", "lang": "de"}).encode(),            # 7
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = BadInputReport()
    cfg = ReaderConfig(max_doc_chars=200, max_line_bytes=20_000, keep_chars=50)
    docs = list(iter_documents(str(path), cfg, report))
    assert [(d.text, d.line) for d in docs] == [("after a BOM", 1), ("last", 7)]
    reasons = {e["line"]: e["reason"] for e in report.files[str(path)]["examples"]}
    assert reasons == {2: "empty text", 3: "invalid UTF-8 (lone surrogate escape)",
                       4: reasons[4], 5: "text longer than 200 characters",
                       6: "line longer than 20000 bytes"}
    assert reasons[4].startswith("malformed JSON")
    dropped = {d.line: d for d in read_documents(str(path), cfg)}
    assert len(dropped[5].text) == 50 and dropped[5].metadata["original_chars"] == 300
    assert dropped[6].metadata["original_bytes"] > 30000 and len(dropped[6].text) == 50
    # Without limits (the default) long texts are documents like any other.
    assert len(list(iter_documents(str(path)))) == 4


def test_tfds_builder_gives_random_access_offline(demo_dir, tmp_path):
    from eurollm_jax.data.tfds_jsonl import jsonl_data_source, prepare_jsonl_dataset
    from eurollm_jax.fileio import read_jsonl

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
    assert sorted(d.line for d in docs) == list(range(len(expected)))
    assert all(isinstance(d.id, str) and d.id.startswith("heldout.jsonl:") for d in docs)


def test_fields_are_found_in_filter_output_metadata(tmp_path):
    """launch.filter keeps a document's original fields under "metadata"."""
    path = tmp_path / "kept.jsonl"
    path.write_text(json.dumps({"id": "1", "text": "Bonġu",
                                "metadata": {"lang": "mt", "source": "udhr"}}) + "\n")
    report = BadInputReport()
    docs = list(iter_documents(str(path), ReaderConfig(), report))
    assert [(d.lang, d.source) for d in docs] == [("mt", "udhr")]
    assert record_field({"a": {"b": 3}}, "a.b") == 3 and record_field({"a": 1}, "a.b", "x") == "x"


def test_expand_inputs(tmp_path):
    for n in ("b.jsonl", "a.jsonl.gz", "c.parquet", "d.jsonl.zst"):
        (tmp_path / n).write_text("")
    assert [p.split("/")[-1] for p in expand_inputs(str(tmp_path / "*"))] == [
        "a.jsonl.gz", "b.jsonl", "c.parquet", "d.jsonl.zst"]
    both = expand_inputs(f"tfds:x:train,{tmp_path / 'b.jsonl'},{tmp_path / '*.parquet'}")
    assert [p.split("/")[-1] for p in both] == ["b.jsonl", "c.parquet", "tfds:x:train"]
    with pytest.raises(ValueError, match="files only"):
        expand_inputs(["tfds:x"], tfds=False)
    with pytest.raises(FileNotFoundError, match="no input files match"):
        expand_inputs([str(tmp_path / "*.jsonl"), str(tmp_path / "nothing*")])
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unsupported input"):
        expand_inputs(str(tmp_path / "*"))


def test_input_names_and_formats():
    assert [input_stem(s) for s in ("a/b.jsonl", "c.json.gz", "d.e.jsonl.zst", "f.parquet",
                                    "tfds:jsonl_corpus/demo:train")] == [
        "b", "c", "d.e", "f", "jsonl_corpus_demo_train"]
    assert [input_format(s) for s in ("x.json.zst", "y.parquet", "tfds:z")] == [
        "jsonl", "parquet", "tfds"]
