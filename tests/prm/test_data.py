"""Step-labelled loaders on fixture files in the published layouts, malformed records
counted by reason, per-language counts."""

import gzip
import json

import pytest

from eurollm_jax.prm import load_step_solutions

SHEPHERD = [
    {"input": "Janet has 16 eggs and eats 3. How many are left? Step 1: 16 - 3 = 13 ки\n"
              "Step 2: The answer is: 13 ки",
     "label": "Janet has 16 eggs and eats 3. How many are left? Step 1: 16 - 3 = 13 +\n"
              "Step 2: The answer is: 13 +", "task": "GSM8K"},
    {"input": "Tom hat 5 Äpfel und isst 2. Step 1: 5 + 2 = 7 ки\nStep 2: Die Antwort ist 7 ки",
     "label": "Tom hat 5 Äpfel und isst 2. Step 1: 5 + 2 = 7 -\nStep 2: Die Antwort ist 7 -",
     "task": "GSM8K", "language": "de"},
    # a translation whose steps do not start with "Step 1:": the question field splits it
    {"question": "Marie a 4 pommes et en mange 1.",
     "input": "Marie a 4 pommes et en mange 1. Étape 1 : 4 - 1 = 3 ки",
     "label": "Marie a 4 pommes et en mange 1. Étape 1 : 4 - 1 = 3 +", "language": "fr"},
    {"input": "no tag here", "label": "no tag here"},
    {"input": "Q? Step 1: a ки", "label": "Q? Step 1: a x"},
    {"input": "Q? Step 1: a ки", "label": "Q? Step 1: b +"},
]

PRM800K = [
    {"labeler": "x", "question": {"problem": "What is 2+3?", "ground_truth_answer": "5"},
     "label": {"steps": [
         {"completions": [{"text": "2+3 is 5.", "rating": 1, "flagged": False}],
          "human_completion": None, "chosen_completion": 0},
         {"completions": [{"text": "So it is 6.", "rating": -1},
                          {"text": "So the answer is 5.", "rating": 1}],
          "human_completion": None, "chosen_completion": 1},
         {"completions": [{"text": "Hmm.", "rating": 0}], "human_completion": None,
          "chosen_completion": 0}],
         "total_time": 1, "finish_reason": "solution"}},
    {"question": {"problem": "What is 7*6?"}, "label": {"steps": [
        {"completions": [{"text": "7*6 = 42", "rating": 1}], "chosen_completion": 0},
        {"completions": [{"text": "then add 1: 43", "rating": -1}, {"text": "x", "rating": -1}],
         "chosen_completion": None, "human_completion": None}],
        "finish_reason": "found_error"}},
    {"question": {"problem": "Hard."}, "label": {"steps": [], "finish_reason": "give_up"}},
    {"question": {"problem": "Bad."}, "label": {"steps": [
        {"completions": [{"text": "a", "rating": None}], "chosen_completion": 0}],
        "finish_reason": "solution"}},
]


def _write(path, records, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(path)


def test_math_shepherd(tmp_path):
    path = _write(tmp_path / "shepherd.jsonl", SHEPHERD, ["{not json"])
    sols, report = load_step_solutions(path, "math_shepherd")
    assert [s.language for s in sols] == ["en", "de", "fr"]
    en, de, fr = sols
    assert en.question == "Janet has 16 eggs and eats 3. How many are left?"
    assert en.steps == ("Step 1: 16 - 3 = 13", "Step 2: The answer is: 13")
    assert en.labels == (True, True) and de.labels == (False, False)
    assert fr.question == "Marie a 4 pommes et en mange 1." and fr.steps == ("Étape 1 : 4 - 1 = 3",)
    assert dict(report.languages) == {"en": 1, "de": 1, "fr": 1}
    reasons = report.to_dict()["malformed"]
    assert sum(reasons.values()) == 4
    assert any("no step tag" in r for r in reasons)
    assert any("label character" in r for r in reasons)
    assert any("differs from 'input'" in r for r in reasons)
    assert any("not valid JSON" in r for r in reasons)
    assert any(":7:" in ex for ex in report.to_dict()["examples"])  # file:line of the bad JSON


@pytest.mark.parametrize("neutral, labels", [("positive", (True, True, True)),
                                             ("negative", (True, True, False)),
                                             ("drop", (True, True))])
def test_prm800k(tmp_path, neutral, labels):
    path = str(tmp_path / "phase2_train.jsonl.gz")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in PRM800K:
            f.write(json.dumps(r) + "\n")
    sols, report = load_step_solutions(path, "auto", language="en", neutral=neutral)
    first, second = sols
    assert first.steps[:2] == ("2+3 is 5.", "So the answer is 5.") and first.answer == "5"
    assert first.labels == labels
    assert second.steps == ("7*6 = 42", "then add 1: 43") and second.labels == (True, False)
    reasons = report.to_dict()["malformed"]
    assert reasons == {"skipped: finish_reason=give_up": 1,
                       "step 1: rating None (expected -1, 0 or 1)": 1}


def test_steps_form_language_filter_and_counts(tmp_path):
    recs = [{"question": "q", "steps": ["a", "b"], "labels": ["+", "-"], "language": "sw"},
            {"question": "q", "steps": ["a"], "labels": [1], "language": "en"},
            {"question": "q", "steps": [], "labels": []},
            {"question": "q", "steps": ["a"], "labels": ["?"]}]
    path = _write(tmp_path / "steps.jsonl", recs)
    sols, report = load_step_solutions(path, languages=("sw",))
    assert len(sols) == 1 and sols[0].labels == (True, False)
    d = report.to_dict()
    assert d["solutions"] == {"sw": 1} and d["labelled_steps"] == {"sw": 2}
    assert d["malformed"]["language_not_selected"] == 1
    assert any("unknown step label" in r for r in d["malformed"])
    with pytest.raises(FileNotFoundError):
        load_step_solutions(str(tmp_path / "missing*.jsonl"))
