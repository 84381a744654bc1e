"""Best-of-N with a PRM: sample N solutions per question, parse, score, select, report.

1. ``sample_solutions``: the inference ``Engine`` continues ``[BOS] question +
   question_sep`` N times per question (temperature 0.7 by default, N up to 64); row j of
   question i uses the random stream ``i * N + j`` of ``seed``, so every sample is the same
   whatever the batching. The text is split into steps at ``step_sep`` (empty lines
   dropped); the final answer is parsed in the question's language
   (``answers.extract_answer``; MATH-style questions: the last ``\\boxed{}``).
2. ``PRMScorer`` scores every sample's steps (aggregated by ``min``, ``last`` or ``mean``).
3. Selection among the first n samples, for every n of ``ns`` (1, 2, 4, ... up to N):
   ``prm`` (the highest score among the samples with a parseable answer), ``majority``
   (the most frequent parsed answer) and ``prm_vote`` (the answer whose samples' scores sum
   highest); ties go to the answer seen first. Accuracy per language and the average over
   languages (``accuracy_table``), written as JSON, a Markdown table and a plot.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from typing import Sequence

from eurollm_jax.fileio import write_json, write_text
from eurollm_jax.inference import SamplingParams
from eurollm_jax.prm.answers import (
    answers_match,
    extract_answer,
    extract_boxed,
    math_answers_match,
    normalize_math_answer,
)
from eurollm_jax.prm.benchmarks import EvalQuestion
from eurollm_jax.prm.render import StepFormat
from eurollm_jax.prm.scoring import PRMScorer

METHODS = ("prm", "majority", "prm_vote")
MAX_N = 64


@dataclasses.dataclass
class Sample:
    text: str
    steps: list[str]
    answer: object  # a float (numeric), a normalised string (math) or None (unparseable)
    correct: bool
    step_probs: list[float] = dataclasses.field(default_factory=list)
    score: float = float("nan")


def split_steps(text: str, step_sep: str = "\n") -> list[str]:
    return [s.strip() for s in (text or "").split(step_sep) if s.strip()]


def parse_answer(text: str, question: EvalQuestion):
    """(answer key, correct) of a solution text for ``question``."""
    if question.kind == "math":
        boxed = extract_boxed(text)
        if boxed is None:
            return None, False
        return normalize_math_answer(boxed), math_answers_match(boxed, question.answer)
    value = extract_answer(text, question.language)
    if value is None or not math.isfinite(value):
        return None, False
    return round(value, 6), answers_match(value, question.answer, "en")


def sample_solutions(engine, tokenizer, questions: Sequence[EvalQuestion], n: int, *,
                     fmt: StepFormat = StepFormat(), temperature: float = 0.7,
                     top_p: float = 1.0, max_new_tokens: int = 256, seed: int = 0,
                     stop_strings: Sequence[str] = ()) -> list[list[Sample]]:
    """``n`` parsed samples per question (module docstring, step 1)."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"N must be in [1, {MAX_N}], got {n}")
    prompts, params = [], []
    for i, q in enumerate(questions):
        ids = ([tokenizer.bos_id] if fmt.add_bos else []) + list(
            tokenizer.encode(q.question + fmt.question_sep, add_bos=False))
        for j in range(n):
            prompts.append(ids)
            params.append(SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature,
                                         top_p=top_p, seed=seed, stream=i * n + j,
                                         stop_strings=tuple(stop_strings)))
    outs = engine.generate_ids(prompts, params)
    result = []
    for i, q in enumerate(questions):
        row = []
        for out in outs[i * n : (i + 1) * n]:
            text = out.text if out.text is not None else tokenizer.decode(list(out))
            answer, correct = parse_answer(text, q)
            row.append(Sample(text, split_steps(text, fmt.step_sep), answer, correct))
        result.append(row)
    return result


def score_samples(scorer: PRMScorer, questions: Sequence[EvalQuestion],
                  samples: list[list[Sample]], how: str = "min") -> None:
    """Fill ``step_probs`` and ``score`` of every sample with steps (in place)."""
    items, where = [], []
    for q, row in zip(questions, samples):
        for s in row:
            if s.steps:
                items.append((q.question, s.steps))
                where.append(s)
    from eurollm_jax.prm.scoring import aggregate

    for s, p in zip(where, scorer.step_probabilities(items)):
        s.step_probs = [float(x) for x in p]
        s.score = aggregate(p, how)


def _first_best(values: dict, order: list):
    best = max(values.values())
    return next(a for a in order if values[a] == best)


def select(samples: Sequence[Sample], method: str) -> Sample | None:
    """The chosen sample (one whose answer is the selected answer), or None."""
    ok = [s for s in samples if s.answer is not None]
    if not ok:
        return None
    if method == "prm":
        scored = [s for s in ok if not math.isnan(s.score)]
        return max(scored, key=lambda s: s.score) if scored else ok[0]
    order = list(dict.fromkeys(s.answer for s in ok))
    if method == "majority":
        answer = _first_best(collections.Counter(s.answer for s in ok), order)
    elif method == "prm_vote":
        votes = collections.defaultdict(float)
        for s in ok:
            votes[s.answer] += 0.0 if math.isnan(s.score) else s.score
        answer = _first_best(votes, order)
    else:
        raise ValueError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    return next(s for s in ok if s.answer == answer)


def default_ns(n: int) -> list[int]:
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return out + [n]


def accuracy_table(questions: Sequence[EvalQuestion], samples: list[list[Sample]],
                   ns: Sequence[int] | None = None) -> dict:
    """``{method: {n: {language: accuracy, "average": mean over languages}}}`` (in %), plus
    ``oracle`` (any of the first n samples correct) and ``first`` (sample 0 alone)."""
    n_max = min(len(r) for r in samples) if samples else 0
    ns = [n for n in (ns or default_ns(n_max)) if n <= n_max]
    langs = sorted({q.language for q in questions})
    table: dict = {}
    for method in METHODS + ("oracle",):
        table[method] = {}
        for n in ns:
            hits: dict = collections.defaultdict(list)
            for q, row in zip(questions, samples):
                head = row[:n]
                if method == "oracle":
                    ok = any(s.correct for s in head)
                else:
                    chosen = select(head, method)
                    ok = chosen is not None and chosen.correct
                hits[q.language].append(ok)
            per = {lang: 100.0 * sum(hits[lang]) / len(hits[lang]) for lang in langs}
            per["average"] = sum(per[lang] for lang in langs) / len(langs)
            table[method][n] = per
    return table


def markdown_table(table: dict, n: int | None = None) -> str:
    """Rows: method (x N); columns: languages and the average."""
    methods = list(table)
    ns = sorted(next(iter(table.values())))
    langs = [k for k in next(iter(next(iter(table.values())).values())) if k != "average"]
    lines = ["| method | N | " + " | ".join(langs) + " | average |",
             "|---|---|" + "---|" * (len(langs) + 1)]
    for method in methods:
        for k in ns if n is None else [n]:
            row = table[method][k]
            lines.append(f"| {method} | {k} | " + " | ".join(f"{row[lang]:.1f}" for lang in langs)
                         + f" | {row['average']:.1f} |")
    return "\n".join(lines) + "\n"


def write_report(out_dir: str, table: dict, extra: dict | None = None) -> dict:
    """``best_of_n.json``, ``best_of_n.md`` and (with matplotlib) ``best_of_n.png``."""
    os.makedirs(out_dir, exist_ok=True)
    payload = {"accuracy": {m: {str(k): v for k, v in t.items()} for m, t in table.items()}}
    payload.update(extra or {})
    write_json(os.path.join(out_dir, "best_of_n.json"), payload)
    write_text(os.path.join(out_dir, "best_of_n.md"), markdown_table(table))
    files = {"json": "best_of_n.json", "table": "best_of_n.md"}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        files["plot"] = "skipped: pip install matplotlib for best_of_n.png"
        return files
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, rows in table.items():
        ns = sorted(rows)
        ax.plot(ns, [rows[k]["average"] for k in ns], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per question)")
    ax.set_ylabel("accuracy, average over languages (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "best_of_n.png"), dpi=120)
    plt.close(fig)
    files["plot"] = "best_of_n.png"
    return files


def run_best_of_n(generator, prm, tokenizer, questions: Sequence[EvalQuestion], out_dir: str, *,
                  n: int = 16, fmt: StepFormat = StepFormat(), aggregate_by: str = "min",
                  temperature: float = 0.7, max_new_tokens: int = 256, seed: int = 0,
                  stop_strings: Sequence[str] = ()) -> dict:
    """Sample, score, select and write the report (module docstring); returns the table.
    ``generator`` / ``prm``: models or engines (the same one works for both)."""
    from eurollm_jax.inference import as_engine

    if not questions:
        raise ValueError("no questions to evaluate")
    engine = as_engine(generator, tokenizer)
    samples = sample_solutions(engine, tokenizer, questions, n, fmt=fmt, temperature=temperature,
                               max_new_tokens=max_new_tokens, seed=seed,
                               stop_strings=stop_strings)
    score_samples(PRMScorer(prm, tokenizer, fmt), questions, samples, aggregate_by)
    table = accuracy_table(questions, samples)
    os.makedirs(out_dir, exist_ok=True)
    from eurollm_jax.fileio import write_jsonl

    write_jsonl(os.path.join(out_dir, "samples.jsonl"), (
        {"id": q.id, "language": q.language, "gold": q.answer, "sample": j, "text": s.text,
         "answer": s.answer, "correct": s.correct, "step_probs": s.step_probs,
         "score": None if math.isnan(s.score) else s.score}
        for q, row in zip(questions, samples) for j, s in enumerate(row)))
    write_report(out_dir, table, {"n": n, "temperature": temperature, "aggregate": aggregate_by,
                                  "questions": len(questions)})
    return table
