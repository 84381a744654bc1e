"""Dialectic RAG (DRAG): the four-section prompt, its parser, traces for distillation,
robustness perturbations and the step ablations.

Prompt (``drag_prompt``): the retrieved multilingual documents, then the instruction to write,
in this order, ``#Extraction:`` (the relevant passages of each document), ``#Explanation:``
(for each, why it is relevant, quoting the source), ``#Dialectic Argumentation:`` (one neutral
paragraph weighing arguments against counter-arguments: which evidence wins and why) and
``#Answer:`` (a short final answer in the question's language). The ablations drop a step:
``no_explanation`` asks for Extraction, Dialectic Argumentation, Answer; ``no_argumentation``
for Extraction, Explanation, Answer.

Parser (``parse_drag``): finds section headers at line starts, case-insensitively, with the
``#`` written once or several times and optional ``**`` bold (``## Answer:``, ``**#Answer:**``,
``#Dialectic argumentation :``). Only the ``#Answer:`` section is scored: its first non-empty
line. Issues, each counted: ``missing:<section>`` (an expected section absent),
``repeated:<section>`` (written more than once: the *last* ``#Answer:`` counts, the model's
final word), ``reordered`` (the first occurrences out of the expected order),
``untagged_answer`` (no ``#Answer:`` header, but a line starting "Answer:" after the last
section: used as the answer) and ``empty_answer``. A generation with no answer at all scores 0.

Traces (``make_traces``): a strong model (any LLM client) writes DRAG answers; a trace is kept
when its answer span is a flexible exact match of a gold answer and an LLM judge (a second
client, or the same one) answers "yes" to whether the reasoning supports that answer from the
documents. Kept traces become SFT records (``eurollm_jax.data.sft``: the DRAG prompt as the user
turn, the trace as the assistant turn, ``"source": "drag"``) for ``--config.data.source=sft``.
Perturbations (``shuffle_documents``, ``inject_irrelevant``) reorder the retrieved documents or
insert passages retrieved for other questions.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from typing import Sequence

from eurollm_jax.rag.corpus import Passage, Query
from eurollm_jax.rag.metrics import flexible_exact_match
from eurollm_jax.rag.strategies import format_documents, golds, prepare
from eurollm_jax.rag.translate import language_name

SECTIONS = ("Extraction", "Explanation", "Dialectic Argumentation", "Answer")
VARIANTS = {
    "full": SECTIONS,
    "no_explanation": ("Extraction", "Dialectic Argumentation", "Answer"),
    "no_argumentation": ("Extraction", "Explanation", "Answer"),
}
_STEP_TEXT = {
    "Extraction": "#Extraction: copy the passages of each document that are relevant to the "
                  "question (they may be in different languages).",
    "Explanation": "#Explanation: for each extracted passage, argue why it is relevant or not, "
                   "quoting its source document ([1], [2], ...).",
    "Dialectic Argumentation": "#Dialectic Argumentation: write one neutral explanation that "
                               "weighs the arguments against the counter-arguments and says "
                               "which evidence wins and why.",
    "Answer": "#Answer: a short final answer (a few words) in {language_name}.",
}

DRAG_TEMPLATE = (
    "You are given a question and documents in several languages. Some documents may be "
    "irrelevant or contradict each other.\n\nDocuments:\n{documents}\n\nQuestion: {question}\n\n"
    "Write the following sections, in this order, each starting with its tag:\n{steps}"
)

JUDGE_TEMPLATE = (
    "Documents:\n{documents}\n\nQuestion: {question}\n\nReasoning and answer:\n{trace}\n\n"
    "Does the reasoning above support its final answer with evidence from the documents? "
    "Reply with yes or no only."
)

_HEADER = re.compile(
    r"^[ \t>]*(?:\*\*)?[ \t]*#{1,6}[ \t]*(?:\*\*)?[ \t]*"
    r"(extraction|explanation|dialectic[ \t]+argumentation|answer)"
    r"[ \t]*(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE)
_UNTAGGED_ANSWER = re.compile(r"^[ \t]*(?:\*\*)?answer(?:\*\*)?[ \t]*:(?:\*\*)?", re.I | re.M)
_CANONICAL = {s.lower(): s for s in SECTIONS}


def drag_prompt(question: str, language: str, passages: Sequence[Passage],
                variant: str = "full") -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    steps = "\n".join(_STEP_TEXT[s].format(language_name=language_name(language))
                      for s in VARIANTS[variant])
    return DRAG_TEMPLATE.format(documents=format_documents(passages), question=question,
                                steps=steps)


@dataclasses.dataclass
class DragParse:
    sections: dict          # section -> text (the last occurrence)
    answer: str             # the scored span ("" when there is none)
    issues: list            # e.g. ["missing:Explanation", "reordered"]

    @property
    def well_formed(self) -> bool:
        return not self.issues


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().strip("*").strip()
        if line:
            return line
    return ""


def parse_drag(text: str | None, expected: Sequence[str] = SECTIONS) -> DragParse:
    """Sections, answer span and issues of a DRAG generation (see the module docstring)."""
    text = text or ""
    found = []  # (section, start of its body, start of its header)
    for m in _HEADER.finditer(text):
        name = _CANONICAL[" ".join(m.group(1).lower().split())]
        found.append((name, m.end(), m.start()))
    sections: dict[str, str] = {}
    counts = Counter(name for name, _, _ in found)
    for j, (name, body, _) in enumerate(found):
        end = found[j + 1][2] if j + 1 < len(found) else len(text)
        sections[name] = text[body:end].strip()
    issues = []
    for s in expected:
        if s not in counts:
            issues.append(f"missing:{s}")
    for s in SECTIONS:
        if counts[s] > 1:
            issues.append(f"repeated:{s}")
    first_order = list(dict.fromkeys(name for name, _, _ in found))
    expected_order = [s for s in expected if s in first_order]
    if [s for s in first_order if s in expected] != expected_order:
        issues.append("reordered")
    answer = ""
    if "Answer" in sections:
        answer = _first_line(sections["Answer"])
    else:
        tail_start = found[-1][1] if found else 0
        m = None
        for m in _UNTAGGED_ANSWER.finditer(text, tail_start):
            pass
        if m is not None:
            issues.append("untagged_answer")
            answer = _first_line(text[m.end():])
    if ("Answer" in sections or "untagged_answer" in issues) and not answer:
        issues.append("empty_answer")
    return DragParse(sections, answer, issues)


def count_issues(parses: Sequence[DragParse]) -> dict:
    """{issue: count} plus "well_formed" and "total"."""
    c = Counter(i for p in parses for i in p.issues)
    c["well_formed"] = sum(p.well_formed for p in parses)
    c["total"] = len(parses)
    return dict(sorted(c.items()))


# ---------------------------------------------------------------------- perturbations


def shuffle_documents(seed: int = 0):
    """A ``perturb`` that shuffles each question's retrieved documents (seeded per question)."""
    def perturb(query: Query, passages):
        ps = list(passages)
        random.Random(f"{seed}:{query.id}").shuffle(ps)
        return ps
    return perturb


def inject_irrelevant(pool: Sequence[Passage], n: int = 2, seed: int = 0):
    """A ``perturb`` that inserts ``n`` passages of ``pool`` not among the question's own
    retrieved ones (nor marked relevant to it) at random positions."""
    pool = list(pool)

    def perturb(query: Query, passages):
        ps = list(passages)
        rng = random.Random(f"{seed}:{query.id}")
        taken = {p.id for p in ps} | set(query.extra.get("relevant", []))
        candidates = [p for p in pool if p.id not in taken]
        for p in rng.sample(candidates, min(n, len(candidates))):
            ps.insert(rng.randrange(len(ps) + 1), p)
        return ps
    return perturb


PERTURBATIONS = ("none", "shuffled", "irrelevant")


def make_perturbation(name: str, index, *, n_irrelevant: int = 2, seed: int = 0):
    if name == "none":
        return None
    if name == "shuffled":
        return shuffle_documents(seed)
    if name == "irrelevant":
        return inject_irrelevant(index.passages, n_irrelevant, seed)
    raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {name!r}")


# ---------------------------------------------------------------------- runs


def run_drag(queries: Sequence[Query], index, generator, *, k: int = 5, variant: str = "full",
             retrieval: str = "multirag", translator=None, perturb=None, max_tokens: int = 512,
             temperature: float = 0.0, seed: int | None = None) -> list[dict]:
    """DRAG answers for ``queries`` on passages retrieved as ``retrieval`` (a strategy name:
    ``multirag`` by default, ``crossrag`` translates them first). One record per query."""
    queries = list(queries)
    inputs = prepare(retrieval, queries, index, translator=translator or generator, k=k,
                     perturb=perturb)
    prompts = [drag_prompt(q.text, q.language, x.passages, variant)
               for q, x in zip(queries, inputs)]
    results = generator.chat([[{"role": "user", "content": p}] for p in prompts],
                             temperature=temperature, max_tokens=max_tokens, seed=seed)
    records = []
    for q, x, prompt, r in zip(queries, inputs, prompts, results):
        parse = parse_drag(r.text, VARIANTS[variant])
        records.append({"id": q.id, "strategy": f"drag:{variant}", "language": q.language,
                        "question": q.text, "documents": [p.id for p in x.passages],
                        "prompt": prompt, "generation": r.text, "error": r.error,
                        "answer": parse.answer, "issues": parse.issues, "golds": golds(q),
                        "em": flexible_exact_match(parse.answer, golds(q))})
    return records


def judge_traces(judge, records: Sequence[dict], index) -> list[bool]:
    """The LLM judge's yes/no on each record's reasoning (an unreadable reply is a no)."""
    by_id = {p.id: p for p in index.passages}
    prompts = [JUDGE_TEMPLATE.format(
        documents=format_documents([by_id[d] for d in r["documents"] if d in by_id]),
        question=r["question"], trace=r["generation"] or "") for r in records]
    results = judge.chat([[{"role": "user", "content": p}] for p in prompts],
                         temperature=0.0, max_tokens=4)
    return [bool(res.text) and res.text.strip().lower().lstrip("*").startswith("yes")
            for res in results]


def make_traces(queries: Sequence[Query], index, teacher, *, judge=None, k: int = 5,
                variant: str = "full", retrieval: str = "multirag", translator=None,
                max_tokens: int = 512) -> dict:
    """DRAG traces from ``teacher``, filtered (exact match, then the judge) -> {"records":
    every trace with its verdicts, "sft": the kept ones as SFT records, "counts": ...}."""
    records = run_drag(queries, index, teacher, k=k, variant=variant, retrieval=retrieval,
                       translator=translator, max_tokens=max_tokens)
    matched = [r for r in records if r["em"] and r["error"] is None]
    verdicts = judge_traces(judge or teacher, matched, index) if matched else []
    by_id = dict(zip((r["id"] for r in matched), verdicts))
    sft = []
    for r in records:
        r["judge_ok"] = by_id.get(r["id"]) if r["id"] in by_id else None
        r["kept"] = bool(r["em"]) and r["error"] is None and bool(r["judge_ok"])
        if r["kept"]:
            sft.append({"messages": [{"role": "user", "content": r["prompt"]},
                                     {"role": "assistant", "content": r["generation"].strip()}],
                        "source": "drag", "id": r["id"], "language": r["language"],
                        "variant": variant})
    counts = {"traces": len(records), "exact_match": len(matched),
              "judge_ok": sum(verdicts), "kept": len(sft),
              "errors": sum(r["error"] is not None for r in records)}
    return {"records": records, "sft": sft, "counts": counts}
