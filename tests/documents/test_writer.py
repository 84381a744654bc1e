"""Shard writer: jsonl / .gz / .zst / parquet round trips through both readers, atomic and
deterministic output, and filter output in every format read by tokenization."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from eurollm_jax.documents import (
    FORMATS,
    Document,
    ReaderConfig,
    ShardWriter,
    iter_documents,
    output_suffix,
    read_documents,
    read_records,
)

REPO = str(pathlib.Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    recs = [{"id": str(i), "text": f"doc {i} ünïcödé", "metadata": {"url": f"u{i}", "n": i}}
            for i in range(5)]
    path = str(tmp_path / f"shard.{fmt}")
    with ShardWriter(path) as w:
        for r in recs:
            w.write(r)
    assert list(read_records(path)) == recs
    docs = list(read_documents(path, ReaderConfig(lang_field=None)))
    assert [d.id for d in docs] == [r["id"] for r in recs]
    assert docs[2].text == "doc 2 ünïcödé" and docs[2].metadata == {"url": "u2", "n": 2}


@pytest.mark.parametrize("fmt", FORMATS)
def test_filter_records_read_as_tokenization_documents(tmp_path, fmt):
    """What the filter writes (``Document.to_record()``, original fields under metadata) is
    what tokenization reads: text, declared language and source, in every output format."""
    docs = [Document(f"d{i}", f"Teksts {i}", {"lang": "lv", "source": "web", "language": "lv",
                                              "language_score": 0.9}) for i in range(3)]
    path = str(tmp_path / f"kept{output_suffix(fmt)}")
    with ShardWriter(path) as w:
        for d in docs:
            w.write(d.to_record())
    got = list(iter_documents(path, ReaderConfig()))
    assert [(d.id, d.text, d.lang, d.source, d.language) for d in got] == [
        (f"d{i}", f"Teksts {i}", "lv", "web", "lv") for i in range(3)]


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
    with pytest.raises(ValueError, match="output format must be one of"):
        ShardWriter(str(tmp_path / "c.jsonl"), "jsonl.bz2")
    assert list(tmp_path.iterdir()) == [tmp_path / "a.jsonl.gz"]


def test_filter_zst_output_is_tokenized_by_launch_tokenize(tmp_path, demo_dir, demo_tokenizer):
    """The defect this package fixed: ``launch.tokenize`` refused the filter's .jsonl.zst."""
    lines = (demo_dir / "heldout.jsonl").read_text(encoding="utf-8").splitlines()[:40]
    records = [json.loads(x) for x in lines]
    kept = tmp_path / "filtered" / "kept"
    for k, part in enumerate((records[:25], records[25:])):
        with ShardWriter(str(kept / f"{k:05d}-train.jsonl.zst")) as w:
            for i, r in enumerate(part):
                w.write(Document(f"train/{i}", r["text"], {"lang": r["lang"],
                                                           "source": r["source"]}).to_record())
    out = tmp_path / "tokens"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.tokenize", f"--input={kept}/*.jsonl.zst",
         f"--tokenizer={demo_tokenizer.path}", f"--output_dir={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed_inputs"] == {} and manifest["bad_input"]["total"] == 0
    assert manifest["totals"]["inputs"] == 2 and manifest["totals"]["docs"] == len(records)
    expected = sum(len(demo_tokenizer.encode(r["text"], add_bos=True, add_eos=True))
                   for r in records)
    assert manifest["totals"]["tokens"] == expected
    assert set(manifest["tokens_by_language"]) == {r["lang"] for r in records}
