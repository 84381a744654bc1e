"""PRM scoring's fast path (final hidden states at the tags x the two label columns) against
the full-vocabulary logits of the model's ordinary forward pass."""

import numpy as np

from eurollm_jax.prm import PRMScorer, StepFormat, label_ids, render_solution
from eurollm_jax.prm.scoring import bucket_tags
from eurollm_jax.prm.synthetic import LANGUAGES, labelled_solutions, problems
from tests.prm.helpers import tiny_model, tokenizer


def _full_logit_probs(model, tok, question, steps):
    """p_k from the [1, T, V] fp32 logits of ``model(ids)``, in float64 on the host."""
    r = render_solution(tok, question, steps, StepFormat())
    plus, minus = label_ids(tok, StepFormat())
    logits = np.asarray(model(np.asarray([r.ids], np.int32)), np.float64)[0]
    assert logits.shape == (len(r.ids), model.cfg.vocab_size)
    at = logits[r.tag_positions]
    return 1.0 / (1.0 + np.exp(at[:, minus] - at[:, plus]))


def test_fast_path_equals_full_logits():
    tok, model = tokenizer(), tiny_model(seed=4, max_seq_len=256)
    sols = labelled_solutions(problems(3, LANGUAGES, 0), 0.5, 1)  # 15 solutions, 3-5 steps
    items = [(s.question, list(s.steps)) for s in sols]
    batched = PRMScorer(model, tok, max_batch_tokens=1024).step_probabilities(items)
    single = PRMScorer(model, tok, max_rows=1).step_probabilities(items)
    for (q, steps), a, b in zip(items, batched, single):
        want = _full_logit_probs(model, tok, q, steps)
        assert a.shape == want.shape == (len(steps),)
        np.testing.assert_allclose(a, want, rtol=1e-5)
        np.testing.assert_allclose(b, want, rtol=1e-5)
    # the rows really were batched with different tag counts
    assert len({len(s) for _, s in items}) > 1


def test_tag_buckets():
    assert [bucket_tags(k) for k in (0, 1, 4, 5, 8, 9, 33)] == [4, 4, 4, 8, 8, 16, 64]
