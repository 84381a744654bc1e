"""The position trained is the position read: the PRM's central invariant.

``training_records`` puts the label right after step tag k and the trainer's loss scores the
prediction made at tag k; ``PRMScorer`` reads the logits at tag k of the whole solution. On
a random model every position's logits differ, so the trainer's loss of each record equals
-log p_k (or -log(1 - p_k)) read by the scorer only when both sides use the same position:
shifting the trained position or the read position by one breaks the equality (checked
below on both shifted variants).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.prm import PRMScorer, StepFormat, label_ids, render_solution, training_records
from eurollm_jax.prm.render import RenderedSolution
from eurollm_jax.train.loss import shifted_targets, target_weights
from eurollm_jax.train.step import loss_sums
from tests.prm.helpers import SOLUTIONS, tiny_model, tokenizer


@functools.partial(jax.jit, static_argnames=("graphdef", "subset"))
def _row_losses(graphdef, params, batch, subset):
    rows = []
    for i in range(batch["tokens"].shape[0]):
        row = {k: v[i : i + 1] for k, v in batch.items()}
        mb = dict(row, targets=shifted_targets(row), weights=target_weights(row))
        rows.append(loss_sums(graphdef, None, params, mb, 0, subset)[0])
    return jnp.stack(rows)


def _record_losses(model, records, subset):
    """The trainer's loss (train.step.loss_sums) of each record, one record per batch row
    (right-padded with segment id 0: never a target)."""
    graphdef, params = nnx.split(model)
    t = max(len(r["tokens"]) for r in records)
    batch = {k: np.zeros((len(records), t), np.int32)
             for k in ("tokens", "segment_ids", "positions", "loss_mask")}
    for i, r in enumerate(records):
        n = len(r["tokens"])
        batch["tokens"][i, :n] = r["tokens"]
        batch["segment_ids"][i, :n] = 1
        batch["positions"][i, :n] = np.arange(n)
        batch["loss_mask"][i, :n] = r["loss_mask"]
    assert np.all(np.asarray(target_weights(batch)).sum(axis=1) == 1.0)
    return np.asarray(_row_losses(graphdef, params, batch, tuple(subset)), np.float64)


def _read_losses(scorer, solutions, shift=0):
    want = []
    items = []
    for q, steps, labels in solutions:
        r = scorer.render(q, steps)
        items.append(RenderedSolution(r.ids, [p + shift for p in r.tag_positions]))
    for probs, (_, _, labels) in zip(scorer.step_probabilities(items), solutions):
        want += [-np.log(p if good else 1.0 - p) for p, good in zip(probs, labels)]
    return np.asarray(want)


def test_trained_position_is_read_position():
    tok, model = tokenizer(), tiny_model(seed=1)
    fmt = StepFormat()
    subset = label_ids(tok, fmt)
    records = [rec for q, steps, labels in SOLUTIONS
               for rec in training_records(tok, q, steps, labels, fmt)]
    trained = _record_losses(model, records, subset)
    scorer = PRMScorer(model, tok, fmt)
    np.testing.assert_allclose(trained, _read_losses(scorer, SOLUTIONS), rtol=1e-4, atol=1e-6)
    # Negative controls: the same check with the read position off by one fails ...
    for shift in (-1, 1):
        assert np.max(np.abs(trained - _read_losses(scorer, SOLUTIONS, shift))) > 1e-3
    # ... and so does a record whose label sits one token later or earlier than the tag.
    for shift in (-1, 1):
        moved = []
        for q, steps, labels in SOLUTIONS:
            r = render_solution(tok, q, steps, fmt)
            for pos, good in zip(r.tag_positions, labels):
                cut = min(pos + 1 + shift, len(r.ids))
                moved.append({"tokens": r.ids[:cut] + [subset[0] if good else subset[1]],
                              "loss_mask": [0] * cut + [1]})
        assert np.max(np.abs(_record_losses(model, moved, subset) - trained)) > 1e-3, shift


def test_records_hold_the_prefix_up_to_the_tag_and_the_label():
    tok = tokenizer()
    fmt = dataclasses.replace(StepFormat(), tag=" <step>")
    plus, minus = label_ids(tok, fmt)
    q, steps, labels = SOLUTIONS[1]
    r = render_solution(tok, q, steps, fmt)
    assert r.ids[0] == tok.bos_id
    for pos in r.tag_positions:
        assert tok.decode(r.ids[: pos + 1]).endswith(" <step>")
    recs = training_records(tok, q, steps, labels, fmt, source="de/prm")
    assert [x["label"] for x in recs] == ["-", "-"]
    for rec, pos in zip(recs, r.tag_positions):
        assert rec["tokens"][:-1] == r.ids[: pos + 1]
        assert rec["tokens"][-1] == minus and rec["source"] == "de/prm"
        assert rec["loss_mask"] == [0] * (pos + 1) + [1]
    # over-long records are left out
    assert len(training_records(tok, q, steps, labels, fmt, max_len=r.tag_positions[0] + 2)) == 1
