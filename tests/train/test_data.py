"""The trainer's make_iterator: every data.source is a DataIterator of the one pipeline, with
live mixture weights, exact resume, finite held-out passes and per-process shards."""

import json

import numpy as np
import pytest

from eurollm_jax.data import BATCH_KEYS, DataIterator, MixtureError
from eurollm_jax.train.data import DataConfigError, documents, make_iterator
from eurollm_jax.tokenizer import ByteTokenizer
from tests.train.helpers import override, small_config
from tests.data.helpers import assert_same, take

IN_MEMORY = ("synthetic", "text", "sft")
BYTES = ByteTokenizer()


def _config(source, **dotted):
    config = small_config(mesh=(1, 1, 1))
    override(config, **{"data.source": source, "data.languages": ("en", "de", "fr")})
    if source == "sft":
        config.train.seq_len = 256  # every conversation fits: none is dropped
    return override(config, **dotted)


def segments(batches):
    """The token runs of every packed segment, as tuples."""
    out = []
    for batch in batches:
        for row, seg in zip(batch["tokens"], batch["segment_ids"]):
            out += [tuple(row[seg == s].tolist()) for s in np.unique(seg[seg > 0])]
    return out


def tokens_of(docs):
    return [d[0] if isinstance(d, tuple) else d for d in docs]


def epoch(it, limit=1000):
    """Every batch of a finite iterator (fails if it does not end within ``limit``)."""
    batches = []
    for batch in it:
        batches.append(batch)
        assert len(batches) < limit, "the eval iterator does not end"
    with pytest.raises(StopIteration):
        next(it)
    return batches


@pytest.mark.parametrize("source", IN_MEMORY)
def test_every_source_is_a_pipeline_iterator(source):
    config = _config(source)
    it = make_iterator(config)
    assert isinstance(it, DataIterator)
    batch = next(it)
    assert tuple(batch) == BATCH_KEYS
    for key in BATCH_KEYS:
        assert batch[key].shape == (8, config.train.seq_len) and batch[key].dtype == np.int32
    real = batch["segment_ids"] > 0
    assert real.mean() > 0.5
    if source == "sft":  # best_fit: whole conversations, loss on the assistant turns only
        assert 0 < batch["loss_mask"].sum() < real.sum()
        assert set(segments([batch])) <= {tuple(t) for t in tokens_of(documents(config)[1]["sft"])}
    else:  # concat: every real token is a target
        np.testing.assert_array_equal(batch["loss_mask"], real.astype(np.int32))
    assert it.default_mixture == it.mixture_weights
    assert sum(it.default_mixture.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("source", IN_MEMORY)
def test_set_mixture_weights_on_every_source(source):
    config = _config(source)
    a, b, fresh = make_iterator(config), make_iterator(config), make_iterator(config)
    for it in (a, b, fresh):
        take(it, 2)
    for it in (a, b):
        it.set_mixture_weights(it.default_mixture)
        assert it.mixture_weights == pytest.approx(it.default_mixture)
    after = take(a, 2)
    assert_same(after, take(b, 2))  # deterministic
    if len(a.source_names) == 1:  # one source: the same weights change nothing
        assert_same(after, take(fresh, 2))
    with pytest.raises(MixtureError, match="unknown source"):
        a.set_mixture_weights({"xx": 1.0})
    if source == "text":
        assert a.source_names == ["de", "en", "fr"]
        a.set_mixture_weights({"de": 1.0})
        assert a.mixture_weights == {"de": 1.0, "en": 0.0, "fr": 0.0}
        german = BYTES.decode(np.concatenate([x["tokens"][1:].ravel() for x in take(a, 3)]))
        assert " the " not in german and " und " in german


@pytest.mark.parametrize("source", IN_MEMORY)
def test_state_round_trip_resumes_bitwise(source):
    config = _config(source)
    it = make_iterator(config, mixture={"en": 1.0, "fr": 1.0} if source == "text" else None)
    take(it, 3)
    if source == "text":
        it.set_mixture_weights({"de": 1.0, "en": 3.0})
    take(it, 2)
    state = json.loads(json.dumps(it.get_state()))  # what the trainer checkpoints
    expected = take(it, 6)
    restored = make_iterator(config)  # built with the default mixture: the state has its own
    restored.set_state(state)
    assert restored.mixture_weights == pytest.approx(it.mixture_weights)
    assert_same(take(restored, 6), expected)


@pytest.mark.parametrize("source", IN_MEMORY)
def test_eval_is_one_finite_pass_over_held_out_documents(source):
    config = _config(source)
    _, train_docs = documents(config, "train")
    _, eval_docs = documents(config, "eval")
    assert sorted(train_docs) == sorted(eval_docs)
    for name in train_docs:
        held = {tuple(t) for t in tokens_of(eval_docs[name])}
        seen = {tuple(t) for t in tokens_of(train_docs[name])}
        assert held and not held & seen  # disjoint documents
    batches = epoch(make_iterator(config, split="eval"))
    got = np.concatenate([b["tokens"][b["segment_ids"] > 0] for b in batches])
    want = np.concatenate([t for docs in eval_docs.values() for t in tokens_of(docs)])
    np.testing.assert_array_equal(np.sort(got), np.sort(want))  # each held-out token once
    if source == "sft":  # whole conversations
        assert sorted(segments(batches)) == sorted(tuple(t) for t in tokens_of(eval_docs["sft"]))


def test_eval_holds_out_the_last_documents_of_each_text_file(tmp_path):
    for stem, words in (("alpha", "abc"), ("beta", "xyz")):
        paragraphs = [f"{stem} {w}{i}" for w in words for i in range(4)]  # 12 per file
        (tmp_path / f"{stem}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    config = _config("text", **{"data.text_files": (str(tmp_path / "*.txt"),),
                                "data.eval_fraction": 0.25, "train.seq_len": 128})
    texts = {BYTES.decode(s) for s in segments(epoch(make_iterator(config, split="eval")))}
    assert texts == {"alpha c1", "alpha c2", "alpha c3", "beta z1", "beta z2", "beta z3"}
    train = make_iterator(config)
    assert train.source_names == ["alpha", "beta"]
    seen = {BYTES.decode(s) for s in segments(take(train, 4))}
    assert not seen & texts


def test_processes_read_disjoint_documents_and_agree_per_shard():
    config = _config("sft")
    _, eval_docs = documents(config, "eval")
    parts = []
    for shard in (0, 1):
        it = make_iterator(config, split="eval", shard_index=shard, shard_count=2)
        batches = epoch(it)
        assert all(b["tokens"].shape == (4, 256) for b in batches)  # train.batch_size / 2
        parts.append(segments(batches))
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(tuple(t) for t in tokens_of(eval_docs["sft"]))
    a = make_iterator(config, shard_index=1, shard_count=2)
    b = make_iterator(config, shard_index=1, shard_count=2)
    c = make_iterator(config, shard_index=0, shard_count=2)
    xa, xb, xc = take(a, 3), take(b, 3), take(c, 3)
    assert_same(xa, xb)
    assert not set(segments(xa)) & set(segments(xc))


def test_batch_size_is_the_process_local_row_count():
    config = _config("synthetic")
    assert next(make_iterator(config, shard_count=2, batch_size=3))["tokens"].shape == (3, 32)
    assert next(make_iterator(config, shard_count=4))["tokens"].shape == (2, 32)
    with pytest.raises(DataConfigError, match="divide evenly over 3 processes"):
        make_iterator(config, shard_count=3)


def test_bad_data_configs_name_the_problem():
    with pytest.raises(DataConfigError, match="not in the in-memory corpus"):
        make_iterator(_config("text"), mixture={"xx": 1.0})
    with pytest.raises(DataConfigError, match="model.vocab_size >= 261"):
        make_iterator(_config("text", **{"model.vocab_size": 128}))
    with pytest.raises(ValueError, match="data.source: unknown source 'parquet'"):
        make_iterator(_config("parquet"))  # the typed schema's check
    with pytest.raises(DataConfigError, match="split must be one of"):
        make_iterator(_config("synthetic"), split="test")
    sft = _config("sft", **{"train.seq_len": 16})  # every conversation is longer: all dropped
    with pytest.raises(ValueError, match="longer than seq_len=16"):
        next(make_iterator(sft))


def test_sft_file_conversations_are_chatml_with_assistant_only_loss(tmp_path):
    from eurollm_jax.fileio import write_jsonl
    from eurollm_jax.tokenizer import chat_template

    convs = [
        [{"role": "user", "content": f"question {i}?"},
         {"role": "assistant", "content": f"answer {i}" * (1 + i % 3)}]
        for i in range(10)
    ]
    path = str(tmp_path / "sft.jsonl")
    write_jsonl(path, [{"messages": c} for c in convs])
    config = _config("sft", **{"data.sft_file": path, "data.eval_fraction": 0.2})
    kind, named = documents(config, "eval")
    assert kind == "sft" and list(named) == ["sft"]
    assert named["sft"] == [chat_template.render_ids(BYTES, c) for c in convs[-2:]]
    for (ids, mask), conv in zip(named["sft"], convs[-2:]):
        answer = conv[1]["content"]
        assert BYTES.decode(np.asarray(ids)[np.asarray(mask) == 1]) == answer
        assert sum(mask) == len(answer.encode()) + 1  # the content and its <|im_end|>
    batches = epoch(make_iterator(config, split="eval"))
    assert sorted(segments(batches)) == sorted(tuple(ids) for ids, _ in named["sft"])


def test_synthetic_eval_documents_are_walks_on_the_training_chain():
    """Held-out synthetic documents differ from the training ones but follow the same
    Markov chain, so the eval loss measures what training learned."""
    config = _config("synthetic")
    _, train = documents(config, "train")
    _, held = documents(config, "eval")
    train_docs, eval_docs = tokens_of(train["synthetic"]), tokens_of(held["synthetic"])
    seen = {(int(a), int(b)) for d in train_docs for a, b in zip(d[1:-1], d[2:])}
    pairs = [(int(a), int(b)) for d in eval_docs for a, b in zip(d[1:-1], d[2:])]
    assert {tuple(d.tolist()) for d in eval_docs}.isdisjoint({tuple(d.tolist()) for d in train_docs})
    # each token has 4 successors; 512 training walks see nearly every transition
    assert np.mean([p in seen for p in pairs]) > 0.95


def test_sft_records_group_by_source_with_their_own_mask_and_mixture(tmp_path):
    """Records carry their pipeline source; pre-rendered records keep their own mask; a
    directory of shards is one input; the mixture weights the sources."""
    from eurollm_jax.fileio import write_jsonl

    shards = tmp_path / "shards"
    shards.mkdir()
    chat = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}], "source": "de"}
            for i in range(6)]
    rendered = [{"tokens": [1, 70 + i, 71, 72, 73], "loss_mask": [0, 0, 1, 0, 1],
                 "source": "prm", "id": f"p{i}"} for i in range(6)]
    write_jsonl(str(shards / "a.jsonl"), chat)
    write_jsonl(str(shards / "b.jsonl"), rendered)
    config = _config("sft", **{"data.sft_file": str(shards), "data.eval_fraction": 0.2,
                               "data.mixture": {"de": 0.0, "prm": 1.0}})
    kind, named = documents(config, "train")
    assert kind == "sft" and sorted(named) == ["de", "prm"]
    assert named["prm"][0] == ([1, 70, 71, 72, 73], [0, 0, 1, 0, 1])
    assert len(named["de"]) == len(named["prm"]) == 5  # each source holds out its own
    batch = next(make_iterator(config))
    real = batch["segment_ids"] > 0
    # only the "prm" records are drawn: every packed row holds 5-token documents
    assert set(batch["tokens"][real].tolist()) <= {1, 70, 71, 72, 73, 74, 75}
    assert batch["loss_mask"][real].sum() == 2 * len(set(zip(*np.nonzero(
        (batch["positions"] == 0) & real))))


@pytest.mark.parametrize("line, match", [
    ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant turn"),
    ('{"messages": [{"role": "bot", "content": "hi"}]}', "role 'bot'"),
    ('{"tokens": [1, 2, 3], "loss_mask": [0, 1]}', "as long as 'tokens'"),
    ('{"tokens": [1, 2, 3], "loss_mask": [1, 1, 0]}', "loss_mask\\[0\\] must be 0"),
    ('{"text": "plain"}', "exactly one of 'messages' or 'tokens'"),
    ('{"messages": [{"role": "assistant", "content": "x"}], "source": ""}', "'source'"),
    ('not json', "not valid JSON"),
])
def test_malformed_sft_records_fail_up_front_naming_file_line_and_fix(tmp_path, line, match):
    good = '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    config = _config("sft", **{"data.sft_file": str(path)})
    with pytest.raises(DataConfigError, match=match) as info:
        make_iterator(config)
    assert f"{path}:2" in str(info.value) and '{"messages"' in str(info.value)
