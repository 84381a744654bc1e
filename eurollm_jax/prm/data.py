"""Step-labelled solutions from local files: Math-Shepherd, PRM800K and a plain steps form.

Formats (JSON lines; ``.gz`` / ``.zst`` too; each record may carry a ``language``, default
the loader's ``language`` argument):

- ``math_shepherd``: ``{"input": "<question> Step 1: ... ки\\nStep 2: ... ки", "label":
  "<same text with each ки replaced by + or ->", "task": ...}``. The question is the
  record's ``question`` when given (``input`` must start with it), else the text before the
  first match of ``step_marker`` (default ``Step 1:``).
- ``prm800k``: the PRM800K phase files: ``{"question": {"problem", "ground_truth_answer"},
  "label": {"steps": [{"completions": [{"text", "rating"}], "human_completion",
  "chosen_completion"}], "finish_reason"}}``. Each step follows the chosen completion (or
  the human one); rating 1 is "+", -1 is "-" (and ends the solution), 0 (neutral) follows
  ``neutral`` ("positive", "negative" or "drop": the solution ends before it). A step with
  no chosen completion takes its first -1 completion (the error the labeller found) and
  ends there. ``finish_reason`` ``give_up`` / ``bad_problem`` records are skipped.
- ``steps``: ``{"question": str, "steps": [str, ...], "labels": ["+"|"-"|1|0|true|false,
  ...], "language": str, "answer": ...}``: the plain form (translated data, our own
  synthetic data); ``labels`` may be shorter than ``steps`` (the rest unlabelled).

``format="auto"`` picks the format of each record from its keys. Every loader returns the
good solutions and a ``LoadReport``: counts per language and malformed records counted by
reason, with the first few locations (a bad record never stops the others).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import re
from typing import Iterator, Sequence

from eurollm_jax.documents import expand_inputs, open_binary

FORMATS = ("auto", "math_shepherd", "prm800k", "steps")
NEUTRAL = ("positive", "negative", "drop")
MATH_SHEPHERD_TAG = "ки"


@dataclasses.dataclass(frozen=True)
class StepSolution:
    question: str
    steps: tuple[str, ...]
    labels: tuple[bool, ...]  # one per labelled step (a prefix of ``steps``)
    language: str = "en"
    answer: str | None = None
    id: str = ""


@dataclasses.dataclass
class LoadReport:
    languages: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    steps: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    malformed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: list = dataclasses.field(default_factory=list)  # (where, reason), first 20

    def bad(self, where: str, reason: str) -> None:
        self.malformed[reason] += 1
        if len(self.examples) < 20:
            self.examples.append((where, reason))

    def good(self, sol: StepSolution) -> None:
        self.languages[sol.language] += 1
        self.steps[sol.language] += len(sol.labels)

    def to_dict(self) -> dict:
        return {"solutions": dict(self.languages), "labelled_steps": dict(self.steps),
                "malformed": dict(self.malformed),
                "examples": [f"{w}: {r}" for w, r in self.examples]}


class Malformed(ValueError):
    """One record that cannot be used; the message is the counted reason."""


def _label(value) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("+", 1, "1", "true", "True", "correct", "good"):
        return True
    if value in ("-", 0, -1, "0", "-1", "false", "False", "incorrect", "bad"):
        return False
    raise Malformed(f"unknown step label {value!r} (use + or -)")


def parse_math_shepherd(record: dict, language: str, tag: str = MATH_SHEPHERD_TAG,
                        step_marker: str = r"Step 1\s*:") -> StepSolution:
    text, labelled = record.get("input"), record.get("label")
    if not isinstance(text, str) or not isinstance(labelled, str):
        raise Malformed("math_shepherd record needs string 'input' and 'label'")
    pieces = text.split(tag)
    if len(pieces) < 2:
        raise Malformed(f"no step tag {tag!r} in 'input'")
    if len(labelled) != len(text) - (len(pieces) - 1) * (len(tag) - 1):
        raise Malformed("'label' is not 'input' with each tag replaced by one label character")
    labels, offset, rebuilt = [], 0, []
    for k, piece in enumerate(pieces[:-1]):
        offset += len(piece)
        mark = labelled[offset]
        if mark not in "+-":
            raise Malformed(f"label character {mark!r} at step {k + 1} (expected + or -)")
        labels.append(mark == "+")
        rebuilt.append(piece)
        offset += 1
    if labelled != "".join(p + ("+" if g else "-") for p, g in zip(rebuilt, labels)) + pieces[-1]:
        raise Malformed("'label' text differs from 'input' outside the step tags")
    question = record.get("question")
    if isinstance(question, str) and question:
        if not text.startswith(question):
            raise Malformed("'input' does not start with the record's 'question'")
        cut = len(question)
    else:
        m = re.search(step_marker, text)
        if m is None:
            raise Malformed(f"no question boundary: no {step_marker!r} in 'input' and no "
                            "'question' field")
        cut = m.start()
        question = text[:cut]
    first = pieces[0][cut:]
    steps = [s.strip() for s in [first] + pieces[1:-1]]
    if any(not s for s in steps):
        raise Malformed("an empty step between two tags")
    return StepSolution(question.strip(), tuple(steps), tuple(labels), language,
                        record.get("answer"), str(record.get("id", "")))


def parse_prm800k(record: dict, language: str, neutral: str = "positive") -> StepSolution:
    if neutral not in NEUTRAL:
        raise ValueError(f"neutral must be one of {NEUTRAL}, got {neutral!r}")
    q, lab = record.get("question"), record.get("label")
    if not isinstance(q, dict) or not isinstance(q.get("problem"), str):
        raise Malformed("prm800k record needs question.problem")
    if not isinstance(lab, dict) or not isinstance(lab.get("steps"), list):
        raise Malformed("prm800k record needs label.steps")
    finish = lab.get("finish_reason")
    if finish in ("give_up", "bad_problem"):
        raise Malformed(f"skipped: finish_reason={finish}")
    steps, labels = [], []
    for k, st in enumerate(lab["steps"]):
        comps = st.get("completions") or []
        chosen = st.get("chosen_completion")
        if chosen is not None:
            if not isinstance(chosen, int) or not 0 <= chosen < len(comps):
                raise Malformed(f"step {k + 1}: chosen_completion {chosen!r} out of range")
            comp = comps[chosen]
        elif st.get("human_completion"):
            comp = st["human_completion"]
        else:
            comp = next((c for c in comps if c.get("rating") == -1), None)
            if comp is None:
                raise Malformed(f"step {k + 1}: no chosen, human or -1 rated completion")
        text, rating = comp.get("text"), comp.get("rating")
        if not isinstance(text, str) or not text.strip():
            raise Malformed(f"step {k + 1}: completion without text")
        if rating not in (-1, 0, 1):
            raise Malformed(f"step {k + 1}: rating {rating!r} (expected -1, 0 or 1)")
        if rating == 0 and neutral == "drop":
            break
        good = rating == 1 or (rating == 0 and neutral == "positive")
        steps.append(text.strip())
        labels.append(good)
        if rating == -1 or chosen is None and not st.get("human_completion"):
            break
    if not steps:
        raise Malformed("no labelled step")
    return StepSolution(q["problem"].strip(), tuple(steps), tuple(labels), language,
                        q.get("ground_truth_answer"), str(record.get("id", "")))


def parse_steps(record: dict, language: str) -> StepSolution:
    question, steps = record.get("question"), record.get("steps")
    if not isinstance(question, str):
        raise Malformed("steps record needs a string 'question'")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip()
                                                           for s in steps):
        raise Malformed("steps record needs 'steps': a non-empty list of non-empty strings")
    labels = record.get("labels", [])
    if not isinstance(labels, list) or len(labels) > len(steps):
        raise Malformed("'labels' must be a list no longer than 'steps'")
    answer = record.get("answer")
    return StepSolution(question.strip(), tuple(s.strip() for s in steps),
                        tuple(_label(v) for v in labels), language,
                        None if answer is None else str(answer), str(record.get("id", "")))


def record_format(record: dict) -> str:
    if "input" in record and "label" in record and isinstance(record.get("label"), str):
        return "math_shepherd"
    if isinstance(record.get("label"), dict) and isinstance(record.get("question"), dict):
        return "prm800k"
    if "steps" in record:
        return "steps"
    raise Malformed(f"unknown record format (keys {sorted(record)[:8]}): expected "
                    "math_shepherd (input/label), prm800k (question/label.steps) or steps")


def parse_record(record, fmt: str = "auto", language: str = "en", *, neutral: str = "positive",
                 tag: str = MATH_SHEPHERD_TAG, step_marker: str = r"Step 1\s*:") -> StepSolution:
    """One record as a ``StepSolution``; ``Malformed`` with the reason otherwise."""
    if not isinstance(record, dict):
        raise Malformed(f"expected a JSON object, got {type(record).__name__}")
    lang = record.get("language", language)
    if not isinstance(lang, str) or not lang:
        raise Malformed(f"'language' must be a non-empty string, got {lang!r}")
    kind = record_format(record) if fmt == "auto" else fmt
    if kind == "math_shepherd":
        return parse_math_shepherd(record, lang, tag, step_marker)
    if kind == "prm800k":
        return parse_prm800k(record, lang, neutral)
    if kind == "steps":
        return parse_steps(record, lang)
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def iter_json_lines(spec: str | Sequence[str]) -> Iterator[tuple[str, object]]:
    """``(file:line, parsed value or a Malformed)`` of every non-empty line of ``spec``."""
    for path in expand_inputs(spec, tfds=False):
        with open_binary(path) as raw:
            for lineno, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as e:
                    yield where, Malformed(f"not valid JSON ({e.msg})")


def load_step_solutions(spec: str | Sequence[str], fmt: str = "auto", *, language: str = "en",
                        languages: Sequence[str] = (), neutral: str = "positive",
                        tag: str = MATH_SHEPHERD_TAG, step_marker: str = r"Step 1\s*:",
                        ) -> tuple[list[StepSolution], LoadReport]:
    """Every good solution of ``spec`` (files, globs, comma-separated) and the report.
    ``languages``: keep only these (others are counted as ``language_not_selected``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    report = LoadReport()
    out = []
    for where, record in iter_json_lines(spec):
        try:
            if isinstance(record, Malformed):
                raise record
            sol = parse_record(record, fmt, language, neutral=neutral, tag=tag,
                               step_marker=step_marker)
        except Malformed as e:
            report.bad(where, str(e))
            continue
        if languages and sol.language not in languages:
            report.malformed["language_not_selected"] += 1
            continue
        if not sol.labels:
            report.bad(where, "no labelled step")
            continue
        sol = dataclasses.replace(sol, id=sol.id or where)
        report.good(sol)
        out.append(sol)
    return out, report
