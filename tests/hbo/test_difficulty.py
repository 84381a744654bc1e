"""Difficulty: IFD through the inference engine's scoring against a NumPy computation on the
model's logits, the score cache, and the bucketed SFT file the trainer reads."""

import numpy as np
import pytest

from eurollm_jax.data.sft import read_sft_records, render_sft_record
from eurollm_jax.hbo.config import split_job_config
from eurollm_jax.hbo.difficulty import ScoreCache, ifd_scores, length_scores, write_bucketed_sft
from eurollm_jax.model import ModelConfig, create_model
from eurollm_jax.tokenizer import ByteTokenizer
from eurollm_jax.train.data import documents
from tests.hbo.helpers import conversation, hbo_config
from tests.train.helpers import SMALL_MODEL


@pytest.fixture(scope="module")
def model():
    return create_model(ModelConfig(**SMALL_MODEL), seed=1)


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _nll(model, ids, targets_from):
    """NLL (float64) of ids[t] for t in targets_from, from the model's logits of ``ids``."""
    logits = np.asarray(model.forward(np.asarray([ids], np.int32)).logits[0])
    lp = _log_softmax(logits)
    return -sum(lp[t - 1, ids[t]] for t in targets_from)


def test_ifd_matches_numpy_on_the_logits(model):
    tok = ByteTokenizer()
    records = [conversation("Repeat: hello world", "hello world", "x"),
               conversation("Continue: the cat", "sat on the mat", "x"),
               {"messages": [{"role": "user", "content": "a"},
                             {"role": "assistant", "content": "b"},
                             {"role": "user", "content": "c"},
                             {"role": "assistant", "content": "dd"}]}]  # two answer turns
    examples = [render_sft_record(tok, r) for r in records]
    got = ifd_scores(model, examples)
    for (ids, mask), score in zip(examples, got):
        targets = [t for t, m in enumerate(mask) if m]
        cond = _nll(model, ids, targets) / len(targets)
        alone = [tok.bos_id] + [ids[t] for t in targets]
        uncond = _nll(model, alone, range(1, len(alone))) / len(targets)
        assert score == pytest.approx(cond / uncond, rel=1e-4)


def test_cache_scores_each_example_once(tmp_path):
    calls = []

    def scorer(model, examples):
        calls.append(len(examples))
        return length_scores(model, examples)

    path = str(tmp_path / "cache.jsonl")
    ex = [([1, 5, 6], [0, 1, 1]), ([1, 7], [0, 1])]
    np.testing.assert_array_equal(ScoreCache(path, "len", "m").score(scorer, None, ex), [2, 1])
    again = ScoreCache(path, "len", "m").score(scorer, None, ex + [([1, 8, 9, 9], [0, 1, 1, 1])])
    np.testing.assert_array_equal(again, [2, 1, 3])
    assert calls == [2, 1]  # the rerun scored only the new example
    ScoreCache(path, "len", "other-model").score(scorer, None, ex)
    assert calls == [2, 1, 2]  # another reference model is another key


def test_bucketed_file_feeds_the_trainer(tmp_path, model):
    records = [conversation(f"Repeat: {w}", w * (1 + i % 5), lang)
               for lang in ("de", "fr") for i, w in enumerate("abcdefghijkl")]
    path = str(tmp_path / "buckets.jsonl")
    sizes = write_bucketed_sft(records, path, tokenizer=ByteTokenizer(), model=model,
                               buckets=4, scorer="length", cache=str(tmp_path / "c.jsonl"))
    assert sizes == {"de": [3, 3, 3, 3], "fr": [3, 3, 3, 3]}
    out = read_sft_records(path)  # valid SFT records, interface C
    for lang in ("de", "fr"):
        for j in range(4):
            bucket = [r for r in out if r["source"] == f"{lang}/b{j}"]
            assert len(bucket) == 3 and all(r["hbo_bucket"] == j for r in bucket)
        scores = [r["hbo_difficulty"] for r in out if r["hbo_subset"] == lang]
        assert scores == sorted(scores)  # bucket 0 = easiest
    kind, named = documents(split_job_config(hbo_config(path))[0], "train")
    assert kind == "sft" and sorted(named) == [f"{s}/b{j}" for s in ("de", "fr") for j in range(4)]
    with pytest.raises(ValueError, match="contains '/'"):
        write_bucketed_sft([conversation("q", "a", "de/x")], path, tokenizer=ByteTokenizer(),
                           buckets=1, scorer="length")
