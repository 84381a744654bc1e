"""Tokenization job: shards and manifest counts, bad input per file, resume, workers, SFT."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eurollm_jax.data import TokenizeConfig, decode_record, load_manifest, tokenize
from eurollm_jax.data.records import ShardedRecords
from eurollm_jax.data.tokenize_job import MARKERS, input_key
from eurollm_jax.documents import ReaderConfig, iter_documents

from tests.documents.test_reader import write_bad_jsonl


def quiet(_msg):
    pass


@pytest.fixture()
def inputs(tmp_path, demo_dir):
    d = tmp_path / "in"
    d.mkdir()
    lines = (demo_dir / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    (d / "a.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n", encoding="utf-8")
    (d / "b.jsonl").write_text("\n".join(lines[len(lines) // 2:]) + "\n", encoding="utf-8")
    write_bad_jsonl(d / "bad.jsonl")
    (d / "empty.jsonl").write_bytes(b"")
    pq.write_table(pa.table({"text": ["Dia dhuit ar maidin", "Bonġu"], "lang": ["ga", "mt"]}),
                   d / "c.parquet")
    return [str(d / n) for n in ("a.jsonl", "b.jsonl", "bad.jsonl", "empty.jsonl", "c.parquet")]


def expected_counts(tok, specs):
    from eurollm_jax.data.tokenize_job import source_name

    out = {}
    for spec in specs:
        for d in iter_documents(spec, ReaderConfig()):
            ids = tok.encode(d.text, add_bos=True, add_eos=True)
            entry = out.setdefault(source_name(d.lang, d.source), [0, 0])
            entry[0] += 1
            entry[1] += len(ids)
    return out


def test_shards_manifest_and_bad_input(inputs, tmp_path, demo_tokenizer):
    out = str(tmp_path / "tok")
    manifest = tokenize(TokenizeConfig(inputs, out, demo_tokenizer.path), progress=quiet)
    expected = expected_counts(demo_tokenizer, inputs)
    assert {n: [e["records"], e["tokens"]] for n, e in manifest["sources"].items()} == expected
    assert manifest["totals"]["tokens"] == sum(t for _, t in expected.values())
    assert sum(manifest["tokens_by_language"].values()) == manifest["totals"]["tokens"]
    assert manifest["tokenizer"]["sha256"] == demo_tokenizer.sha256
    assert manifest["kind"] == "pretrain" and manifest["failed_inputs"] == {}
    bad = manifest["bad_input"]["files"]
    assert sorted(e["line"] for e in bad[inputs[2]]["examples"]) == [2, 3, 4, 6, 7, 8, 9]
    assert bad[inputs[3]]["counts"] == {"empty file": 1}
    assert manifest["bad_input"]["total"] == 8
    # Records hold exactly the tokenizer's ids (BOS ... EOS), loss mask implicit.
    entry = manifest["sources"]["mt/c"]
    paths = [os.path.join(out, p) for p in entry["shards"]]
    records = ShardedRecords(paths, entry["shard_records"])
    tokens, mask = decode_record(records[0])
    assert tokens.tolist() == demo_tokenizer.encode("Bonġu", add_eos=True) and mask is None
    assert demo_tokenizer.decode(tokens) == "Bonġu"
    assert load_manifest(out)["sources"] == manifest["sources"]


def test_resume_redoes_only_unfinished_inputs(inputs, tmp_path, demo_tokenizer):
    out = str(tmp_path / "tok")
    config = TokenizeConfig(inputs, out, demo_tokenizer.path)
    first = tokenize(config, progress=quiet)
    # Simulate a crash while input b was being written: no marker, a partial shard.
    key = input_key(inputs[1])
    os.remove(os.path.join(out, MARKERS, f"{key}.json"))
    shard = next(os.path.join(out, p) for e in first["sources"].values() for p in e["shards"]
                 if key in p)
    with open(shard, "r+b") as f:
        f.truncate(10)
    messages = []
    second = tokenize(config, progress=messages.append)
    assert "4 already done, 1 to do" in messages[0]
    assert second["sources"] == first["sources"] and second["totals"] == first["totals"]
    assert len(ShardedRecords([shard])) > 0  # rewritten whole
    third = []
    tokenize(config, progress=third.append)
    assert "5 already done, 0 to do" in third[0]


def test_parallel_workers_match_serial(inputs, tmp_path, demo_tokenizer):
    serial = tokenize(TokenizeConfig(inputs, str(tmp_path / "s"), demo_tokenizer.path),
                      progress=quiet)
    parallel = tokenize(TokenizeConfig(inputs, str(tmp_path / "p"), demo_tokenizer.path,
                                       num_workers=2), progress=quiet)
    assert parallel["sources"] == serial["sources"]
    for entry in serial["sources"].values():
        for rel in entry["shards"]:
            a = ShardedRecords([str(tmp_path / "s" / rel)])
            b = ShardedRecords([str(tmp_path / "p" / rel)])
            assert a.read(range(len(a))) == b.read(range(len(b)))


def test_sft_records_carry_chatml_masks(tmp_path, demo_tokenizer):
    messages = [{"role": "user", "content": "Kif int?"},
                {"role": "assistant", "content": "Tajjeb, grazzi."}]
    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps({"messages": messages, "lang": "mt", "source": "chat"}) + "\n")
    manifest = tokenize(TokenizeConfig([str(path)], str(tmp_path / "o"), demo_tokenizer.path,
                                       reader=ReaderConfig(kind="sft")), progress=quiet)
    assert manifest["kind"] == "sft"
    entry = manifest["sources"]["mt/chat"]
    tokens, mask = decode_record(ShardedRecords([str(tmp_path / "o" / entry["shards"][0])])[0])
    ids, expected_mask = demo_tokenizer.render_chat(messages)
    assert tokens.tolist() == ids and mask.tolist() == expected_mask


def test_refuses_to_mix_tokenizers(inputs, tmp_path, demo_tokenizer):
    out = str(tmp_path / "tok")
    tokenize(TokenizeConfig(inputs[:1], out, demo_tokenizer.path), progress=quiet)
    with pytest.raises(ValueError, match="another tokenizer or kind"):
        tokenize(TokenizeConfig(inputs[:1], out, demo_tokenizer.path,
                                reader=ReaderConfig(kind="sft")), progress=quiet)
    with pytest.raises(FileNotFoundError, match="not found"):
        tokenize(TokenizeConfig([str(tmp_path / "missing.jsonl")], out, demo_tokenizer.path))


def test_truncated_input_fails_and_is_retried_while_others_finish(inputs, tmp_path,
                                                                  demo_tokenizer):
    """An input that cannot be read to its end is not half-tokenized: it is listed under
    ``failed_inputs`` (no marker, no shards) and retried by the next run."""
    import gzip

    lines = (tmp_path / "in" / "a.jsonl").read_bytes()
    blob = gzip.compress(lines)
    cut = tmp_path / "in" / "cut.jsonl.gz"
    cut.write_bytes(blob[: len(blob) // 2])
    out = str(tmp_path / "tok")
    config = TokenizeConfig([inputs[0], str(cut)], out, demo_tokenizer.path)
    manifest = tokenize(config, progress=quiet)
    assert list(manifest["failed_inputs"]) == [str(cut)]
    assert "cannot be read to its end" in manifest["failed_inputs"][str(cut)]
    assert manifest["inputs"] == [inputs[0]]
    assert not any(input_key(str(cut)) in p for e in manifest["sources"].values()
                   for p in e["shards"])
    cut.write_bytes(blob)  # repaired: the next run does only this input
    messages = []
    again = tokenize(config, progress=messages.append)
    assert "1 already done, 1 to do" in messages[0] and again["failed_inputs"] == {}
    assert again["totals"]["docs"] == 2 * manifest["totals"]["docs"]
