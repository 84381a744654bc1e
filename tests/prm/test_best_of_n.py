"""Best-of-N selection, voting, accuracy tables; sampling with per-row seeds; batched PRM
scoring equals one-at-a-time scoring."""

import math

import numpy as np
import pytest

from eurollm_jax.inference import Engine
from eurollm_jax.prm import (
    EvalQuestion,
    PRMScorer,
    Sample,
    accuracy_table,
    aggregate,
    markdown_table,
    sample_solutions,
    score_samples,
    select,
    split_steps,
    write_report,
)
from tests.prm.helpers import SOLUTIONS, tiny_model, tokenizer


def _s(answer, score, correct=None):
    return Sample("", ["x"], answer, correct if correct is not None else answer == 5, [], score)


def test_selection_rules():
    # 7 is the majority, 5 has the single best score, 5's scores also sum highest
    row = [_s(7, 0.2), _s(7, 0.3), _s(5, 0.9), _s(None, 1.0), _s(7, 0.1), _s(5, 0.8)]
    assert select(row, "prm").answer == 5 and select(row, "prm").score == 0.9
    assert select(row, "majority").answer == 7
    assert select(row, "prm_vote").answer == 5  # 1.7 > 0.6
    assert select([_s(None, 1.0)], "majority") is None
    assert select([_s(3, 0.5), _s(4, 0.5)], "majority").answer == 3  # tie: seen first
    with pytest.raises(ValueError):
        select(row, "best")


def test_accuracy_table_per_language_and_average(tmp_path):
    qs = [EvalQuestion("q1", "5", "en", "1"), EvalQuestion("q2", "5", "de", "2")]
    rows = [[_s(7, 0.2), _s(5, 0.9), _s(7, 0.3), _s(7, 0.1)],
            [_s(5, 0.6), _s(5, 0.7), _s(3, 0.1), _s(3, 0.2)]]
    table = accuracy_table(qs, rows)
    assert sorted(table["prm"]) == [1, 2, 4]
    assert table["prm"][4] == {"de": 100.0, "en": 100.0, "average": 100.0}
    assert table["majority"][4] == {"de": 100.0, "en": 0.0, "average": 50.0}
    assert table["majority"][1]["en"] == 0.0 and table["oracle"][2]["en"] == 100.0
    md = markdown_table(table)
    assert "| majority | 4 | 100.0 | 0.0 | 50.0 |" in md
    files = write_report(str(tmp_path), table)
    assert (tmp_path / "best_of_n.json").exists() and (tmp_path / files["table"]).exists()


def test_split_steps_and_aggregate():
    assert split_steps("a\n\n b \nc") == ["a", "b", "c"]
    assert aggregate([0.9, 0.2, 0.7], "min") == 0.2
    assert aggregate([0.9, 0.2, 0.7], "last") == 0.7
    assert aggregate([0.9, 0.2, 0.7], "mean") == pytest.approx(0.6)
    assert math.isnan(aggregate([], "min"))
    with pytest.raises(ValueError):
        aggregate([0.5], "max")


def test_batched_scoring_equals_one_at_a_time():
    tok, model = tokenizer(), tiny_model(seed=2)
    items = [(q, steps) for q, steps, _ in SOLUTIONS] * 3
    batched = PRMScorer(model, tok).step_probabilities(items)
    single = PRMScorer(model, tok, max_rows=1).step_probabilities(items)
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [len(p) for p in batched] == [len(s) for _, s in items]
    with pytest.raises(ValueError, match="max_seq_len"):
        PRMScorer(model, tok).score([("x" * 200, ["y"])])


def test_sampling_rows_do_not_depend_on_batching():
    tok, model = tokenizer(), tiny_model(seed=3)
    engine = Engine(model, tok)
    qs = [EvalQuestion("Start with 3.", "3", "en", "a"), EvalQuestion("Anza na 2.", "2", "sw", "b")]
    both = sample_solutions(engine, tok, qs, 3, max_new_tokens=12, seed=7)
    assert len(both) == 2 and all(len(r) == 3 for r in both)
    texts = [s.text for s in both[0]]
    assert len(set(texts)) > 1  # temperature 0.7: different samples per row
    again = sample_solutions(engine, tok, qs, 3, max_new_tokens=12, seed=7)
    assert [s.text for r in again for s in r] == [s.text for r in both for s in r]
    score_samples(PRMScorer(model, tok), qs, both)
    for s in (s for r in both for s in r if s.steps):
        assert len(s.step_probs) == len(s.steps) and 0.0 < s.score < 1.0
    with pytest.raises(ValueError, match="N must be"):
        sample_solutions(engine, tok, qs, 65)


def test_score_file(tmp_path):
    import json

    from eurollm_jax.prm.scoring import score_file

    tok, model = tokenizer(), tiny_model(seed=4)
    src = tmp_path / "solutions.jsonl"
    rows = [{"question": q, "steps": s, "labels": ["+" if g else "-" for g in lab],
             "language": "de" if q.startswith("B") else "en"} for q, s, lab in SOLUTIONS]
    rows.append({"question": "unlabelled", "steps": ["1 plus 1 is 2."]})
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{bad\n", encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    summary = score_file(PRMScorer(model, tok), str(src), str(out), how="last")
    assert summary["scored"] == 4 and sum(summary["malformed"].values()) == 1
    assert sorted(summary["step_accuracy"]) == ["de", "en"]
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [len(r["step_probs"]) for r in scored] == [3, 2, 2, 1]
    assert all(r["score"] == r["step_probs"][-1] for r in scored)
