"""Shard IO: jsonl / .gz / .zst / parquet round trips, and bad input that never crashes."""

import gzip
import json

import pytest

from eurollm_jax.filtering.io import ShardWriter, expand_inputs, read_documents, read_records


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "jsonl.zst", "parquet"])
def test_round_trip(tmp_path, fmt):
    if fmt == "jsonl.zst":
        pytest.importorskip("zstandard")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    recs = [{"id": str(i), "text": f"doc {i} ünïcödé", "metadata": {"url": f"u{i}", "n": i}}
            for i in range(5)]
    path = str(tmp_path / f"shard.{fmt}")
    with ShardWriter(path) as w:
        for r in recs:
            w.write(r)
    assert list(read_records(path)) == recs
    docs = list(read_documents(path))
    assert [d.id for d in docs] == [r["id"] for r in recs]
    assert docs[2].text == "doc 2 ünïcödé" and docs[2].metadata == {"url": "u2", "n": 2}


def test_writer_is_atomic_and_deterministic(tmp_path):
    path = str(tmp_path / "a.jsonl.gz")
    w = ShardWriter(path)
    w.write({"id": "1", "text": "x"})
    assert not (tmp_path / "a.jsonl.gz").exists()  # only the temporary file so far
    w.close()
    first = (tmp_path / "a.jsonl.gz").read_bytes()
    with ShardWriter(path) as w:
        w.write({"id": "1", "text": "x"})
    assert (tmp_path / "a.jsonl.gz").read_bytes() == first  # gzip mtime is fixed
    w = ShardWriter(str(tmp_path / "b.jsonl"))
    w.write({"id": "2"})
    w.abort()
    assert list(tmp_path.iterdir()) == [tmp_path / "a.jsonl.gz"]


def test_bad_input_becomes_dropped_documents(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"id": "ok", "text": "A fine document."}).encode(),
        b"{not json",
        b'{"id": "bin", "text": "caf\xe9 \xff"}',
        json.dumps({"id": "empty", "text": "   "}).encode(),
        json.dumps({"id": "notext", "body": "x"}).encode(),
        json.dumps({"id": "nostr", "text": 42}).encode(),
        b"[1, 2, 3]",
        json.dumps({"id": "huge", "text": "x" * 5000}).encode(),
        b"",
        json.dumps({"id": "long_line", "text": "y" * 50000}).encode(),
        json.dumps({"text": "no id here"}).encode(),
        b'{"id": "surrogate", "text": "half a pair \\ud800 here"}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    docs = list(read_documents(str(path), max_doc_chars=4000, max_line_bytes=20000,
                               keep_chars=100))
    reasons = {d.id: d.drop_reason for d in docs}
    assert reasons == {
        "ok": None, "bad/1": "input:malformed_json", "bad/2": "input:invalid_utf8",
        "empty": "input:empty_document", "notext": "input:missing_text",
        "nostr": "input:missing_text", "bad/6": "input:malformed_json",
        "huge": "input:document_too_large", "bad/9": "input:line_too_large",
        "bad/10": None, "bad/11": "input:invalid_utf8"}
    by_id = {d.id: d for d in docs}
    assert len(by_id["huge"].text) == 100 and by_id["huge"].metadata["original_chars"] == 5000
    assert by_id["bad/9"].metadata["original_bytes"] > 50000
    assert "\ufffd" in by_id["bad/2"].text


def test_truncated_and_unreadable_files(tmp_path):
    good = "\n".join(json.dumps({"id": str(i), "text": "t" * 200}) for i in range(200)) + "\n"
    blob = gzip.compress(good.encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    docs = list(read_documents(str(tmp_path / "cut.jsonl.gz")))
    assert docs[-1].drop_reason == "input:unreadable_shard_tail"
    assert all(d.drop_reason is None for d in docs[:-1])
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file")
    docs = list(read_documents(str(tmp_path / "junk.parquet")))
    assert [d.drop_reason for d in docs] == ["input:unreadable_shard"]


def test_expand_inputs(tmp_path):
    for n in ("b.jsonl", "a.jsonl.gz", "c.parquet"):
        (tmp_path / n).write_text("")
    assert [p.split("/")[-1] for p in expand_inputs(str(tmp_path / "*"))] == [
        "a.jsonl.gz", "b.jsonl", "c.parquet"]
    with pytest.raises(FileNotFoundError, match="no input files"):
        expand_inputs(str(tmp_path / "nothing*"))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unsupported input"):
        expand_inputs(str(tmp_path / "*"))
