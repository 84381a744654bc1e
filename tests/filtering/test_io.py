"""The filter's view of its input shards: every record comes out, bad input as dropped
documents with ``input:<reason>``, never a crash. (Formats, the writer and input expansion are
tested with ``eurollm_jax.documents`` in tests/documents.)"""

import gzip
import json

from eurollm_jax.filtering.io import read_documents


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


def test_filter_reads_no_declared_language(tmp_path):
    """Language ID labels filter documents: a record without ``lang`` is fine, and one with it
    keeps it as metadata (the filter's output carries it on to tokenization)."""
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "Kein Sprachfeld"}) + "\n"
                    + json.dumps({"id": "b", "text": "Mit", "lang": "de", "url": "u"}) + "\n")
    docs = list(read_documents(str(path)))
    assert [(d.id, d.drop_reason, d.lang, d.language) for d in docs] == [
        ("a", None, None, "unknown"), ("b", None, None, "unknown")]
    assert docs[1].metadata == {"lang": "de", "url": "u"}
