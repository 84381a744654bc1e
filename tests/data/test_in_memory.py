"""In-memory token corpora are pipeline sources like ArrayRecord shards: same records, same
batches, same state, for pre-training (concat) and SFT (best_fit) documents."""

import json

import numpy as np
import pytest

from eurollm_jax.data import InMemoryRecords, PipelineConfig, ShardedRecords, make_iterator
from eurollm_jax.data.pipeline import build_dataset, describe_sources
from eurollm_jax.data.synthetic import write_token_corpus
from eurollm_jax.data.tokenize_job import load_manifest
from tests.data.helpers import assert_same, take

B, T = 4, 48


def _docs(kind, seed=0):
    rng = np.random.default_rng(seed)
    out, uid = {}, 1
    for name, n in (("en/web", 50), ("mt/udhr", 20)):
        docs = []
        for _ in range(n):
            tokens = np.arange(int(rng.integers(2, 40)), dtype=np.int32) + uid * 1000
            uid += 1
            if kind == "sft":
                docs.append((tokens, (rng.random(len(tokens)) < 0.5).astype(np.int32)))
            else:
                docs.append(tokens)
        out[name] = docs
    return out


def _config(manifest="", **kw):
    return PipelineConfig(manifest=manifest, batch_size=B, seq_len=T, shard_index=0,
                          shard_count=1, seed=5, **kw)


@pytest.mark.parametrize("kind", ["pretrain", "sft"])
def test_records_and_batches_match_the_same_corpus_on_disk(tmp_path, kind):
    docs = _docs(kind)
    manifest = write_token_corpus(str(tmp_path), docs, kind=kind, records_per_shard=16)
    memory = {name: InMemoryRecords(d) for name, d in docs.items()}
    for name, entry in manifest["sources"].items():
        disk = ShardedRecords([str(tmp_path / p) for p in entry["shards"]],
                              entry["shard_records"])
        assert len(disk) == len(memory[name]) == entry["records"]
        assert memory[name].num_tokens == entry["tokens"]
        indices = [len(disk) - 1, 0, 3]
        assert disk.read(indices) == memory[name].read(indices)
    for mixture in ("proportional", "temperature", {"mt/udhr": 1.0}):
        cfg = _config(str(tmp_path), mixture=mixture, emit_source_ids=True)
        with make_iterator(cfg) as a:
            expected = take(a, 6)
            state = a.get_state()
        with make_iterator(_config(mixture=mixture, emit_source_ids=True), memory,
                           kind=kind) as b:
            got = take(b, 6)
            assert b.get_state() == state  # one state format for both origins
        assert_same(got, expected)
    if kind == "sft":  # the kind picks best_fit: whole documents, masks kept
        assert b.packing_stats()["split_docs"] == 0
        assert any(x["loss_mask"][x["segment_ids"] > 0].min() == 0 for x in got)


def test_in_memory_sources_in_worker_processes_resume_exactly():
    memory = {name: InMemoryRecords(d) for name, d in _docs("pretrain").items()}
    cfg = _config(num_workers=2, mixture="uniform")
    with make_iterator(cfg, memory) as it:  # the records pickle into the workers
        take(it, 3)
        it.set_mixture_weights({"en/web": 1.0, "mt/udhr": 3.0})
        state = json.loads(json.dumps(it.get_state()))
        expected = take(it, 4)
    with make_iterator(cfg, memory) as restored:
        restored.set_state(state)
        assert restored.mixture_weights == pytest.approx({"en/web": 0.25, "mt/udhr": 0.75})
        assert_same(take(restored, 4), expected)


def test_default_mixture_and_source_errors(tmp_path):
    memory = {name: InMemoryRecords(d) for name, d in _docs("pretrain").items()}
    it = make_iterator(_config(mixture={"en/web": 1.0}, default_mixture="uniform"), memory)
    assert it.mixture_weights == {"en/web": 1.0, "mt/udhr": 0.0}
    assert it.default_mixture == {"en/web": 0.5, "mt/udhr": 0.5}
    assert make_iterator(_config(mixture={"en/web": 1.0}), memory).default_mixture == {
        "en/web": 1.0, "mt/udhr": 0.0}
    with pytest.raises(ValueError, match="manifest is empty"):
        build_dataset(_config())
    with pytest.raises(ValueError, match="kind must be one of"):
        build_dataset(_config(), memory, kind="chat")
    write_token_corpus(str(tmp_path), {"en/web": [np.arange(5)]})
    disk = ShardedRecords([str(p) for p in tmp_path.glob("**/*.array_record")])
    with pytest.raises(TypeError, match="through PipelineConfig.manifest"):
        describe_sources({"en/web": disk})
    assert load_manifest(str(tmp_path))["sources"]["en/web"]["records"] == len(disk) == 1
