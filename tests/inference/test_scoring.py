"""Log-likelihoods against transformers, and lm-eval's rolling-window semantics."""

import numpy as np
import pytest

from eurollm_jax.inference import loglikelihood, loglikelihood_rolling, rolling_windows
from tests.inference.conftest import VOCAB, hf_token_logprobs

pytestmark = pytest.mark.torch


def _ids(n, seed):
    return np.random.default_rng(seed).integers(5, VOCAB, size=n).tolist()


def test_loglikelihood_matches_transformers(engine, hf_model):
    import torch

    requests = [
        ([1] + _ids(3, 0), _ids(2, 1)),
        ([1] + _ids(14, 2), _ids(6, 3)),
        ([1], _ids(9, 4)),
        ([1] + _ids(25, 5), _ids(1, 6)),
    ]
    # a continuation that is the greedy one under transformers
    ctx = [1] + _ids(6, 7)
    greedy = []
    with torch.no_grad():
        for _ in range(4):
            greedy.append(int(hf_model(torch.tensor([ctx + greedy])).logits[0, -1].argmax()))
    requests.append((ctx, greedy))
    results = loglikelihood(engine, requests, max_batch_tokens=64)  # forces several batches
    for (c, k), res in zip(requests, results):
        ref = hf_token_logprobs(hf_model, c + k)[len(c) - 1 :]
        assert abs(res.logprob - sum(ref)) <= 1e-4
        np.testing.assert_allclose(res.token_logprobs, ref, atol=1e-4)
        with torch.no_grad():
            logits = hf_model(torch.tensor([c + k])).logits[0]
        hf_greedy = all(int(logits[len(c) - 1 + j].argmax()) == t for j, t in enumerate(k))
        assert res.is_greedy == hf_greedy
    assert results[-1].is_greedy


def test_the_lm_head_in_chunks_gives_the_same_scores(engine, hf_model, monkeypatch):
    from eurollm_jax.inference import scoring

    requests = [([1] + _ids(20, 10), _ids(11, 11)), ([1] + _ids(4, 12), _ids(3, 13))]
    whole = scoring.loglikelihood(engine, requests)
    monkeypatch.setattr(scoring, "SCORE_CHUNK", 5)  # 32-slot rows: 7 chunks, the last padded
    chunked = scoring.loglikelihood(engine, requests)
    for (c, k), a, b in zip(requests, whole, chunked):
        ref = hf_token_logprobs(hf_model, c + k)[len(c) - 1 :]
        np.testing.assert_allclose(b.token_logprobs, ref, atol=1e-4)
        np.testing.assert_allclose(b.token_logprobs, a.token_logprobs, rtol=1e-6, atol=1e-6)
        assert a.is_greedy == b.is_greedy


def test_overlong_inputs_keep_their_last_tokens(engine, hf_model):
    ctx, cont = [1] + _ids(30, 8), _ids(5, 9)
    res = loglikelihood(engine, [(ctx, cont)], max_length=16)[0]
    whole = (ctx + cont)[-17:]
    ref = hf_token_logprobs(hf_model, whole)[-5:]
    assert abs(res.logprob - sum(ref)) <= 1e-4


def test_rolling_windows_match_lm_eval():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    for n, max_len in ((1, 4), (7, 4), (8, 4), (9, 4), (23, 5), (40, 16), (3, 16)):
        toks = list(range(10, 10 + n))
        want = [make_disjoint_window(w) for w in get_rolling_token_windows(toks, 1, max_len, 1)]
        assert rolling_windows(toks, 1, max_len) == [(list(a), list(b)) for a, b in want]
        predicted = [t for _, cont in rolling_windows(toks, 1, max_len) for t in cont]
        assert predicted == toks


def test_loglikelihood_rolling_matches_transformers(engine, hf_model):
    docs = [_ids(40, 10), _ids(9, 11)]
    results = loglikelihood_rolling(engine, docs, max_length=16)
    for doc, res in zip(docs, results):
        ref = []
        for ctx, cont in rolling_windows(doc, 1, 16):
            ref += hf_token_logprobs(hf_model, ctx + cont)[len(ctx) - 1 :]
        assert res.num_tokens == len(doc) == len(ref)
        assert abs(res.logprob - sum(ref)) <= 1e-4
    # a short document is one window: log p(doc | BOS)
    short = hf_token_logprobs(hf_model, [1] + docs[1])
    assert abs(results[1].logprob - sum(short)) <= 1e-4


def test_scoring_errors(engine):
    with pytest.raises(ValueError, match="empty context"):
        loglikelihood(engine, [([], [5])])
    with pytest.raises(ValueError, match="empty continuation"):
        loglikelihood(engine, [([1], [])])
    with pytest.raises(ValueError, match="vocabulary"):
        loglikelihood(engine, [([1], [VOCAB])])
