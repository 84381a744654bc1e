"""The multilingual RAG strategies, one prompt template each, and the run that scores them.

- ``norag``: the question alone (the no-retrieval baseline).
- ``monorag``: retrieve from the question-language corpus (the index's scope for that
  language), generate.
- ``trag``: translate the question into English, retrieve from the English corpus, generate
  (the prompt shows the original question and its translation; answer in the question's
  language).
- ``multirag``: retrieve from the mixed multilingual index, generate from the mixed passages.
- ``crossrag``: retrieve as ``multirag``, translate every retrieved passage not already in the
  pivot language (English) into it, generate, instructed to answer in the question's language.

Every template ends with "Answer:"; the answer span is the generation's first non-empty line
(a leading "Answer:" label removed). Generation goes through the one LLM client
(``LLMClient.from_engine`` or ``from_endpoint``), greedy by default, so a run is the same in
process and against ``launch.serve``. ``run_strategies`` returns one record per (strategy,
question): hits, prompt, generation, answer span, ``em`` (flexible exact match), the answer's
language and ``language_ok``; ``metrics.summarise`` makes the strategy x language table.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from eurollm_jax.rag.corpus import Passage, Query
from eurollm_jax.rag.index import ALL, Hit
from eurollm_jax.rag.metrics import AnswerLanguage, flexible_exact_match
from eurollm_jax.rag.translate import TranslationStats, language_name, translate

STRATEGIES = ("norag", "monorag", "trag", "multirag", "crossrag")
PIVOT = "en"

_ANSWER_RULE = ("Answer with a short answer (a few words) in {language_name}, on one line.")

TEMPLATES = {
    "norag": (
        "Answer the question.\n" + _ANSWER_RULE + "\n\nQuestion: {question}\nAnswer:"),
    "monorag": (
        "Use the documents below (in {language_name}) to answer the question.\n"
        + _ANSWER_RULE + "\n\n{documents}\n\nQuestion: {question}\nAnswer:"),
    "trag": (
        "Use the documents below (in English) to answer the question.\n" + _ANSWER_RULE
        + "\n\n{documents}\n\nQuestion: {question}\nQuestion in English: {question_en}\nAnswer:"),
    "multirag": (
        "Use the documents below (in several languages) to answer the question.\n"
        + _ANSWER_RULE + "\n\n{documents}\n\nQuestion: {question}\nAnswer:"),
    "crossrag": (
        "Use the documents below (translated into English) to answer the question. The "
        "question is in {language_name}: answer in {language_name}, not in English.\n"
        + _ANSWER_RULE + "\n\n{documents}\n\nQuestion: {question}\nAnswer:"),
}


def format_documents(passages: Sequence[Passage], *, show_language: bool = True) -> str:
    lines = []
    for i, p in enumerate(passages, 1):
        tag = f" ({language_name(p.language)})" if show_language else ""
        title = f" {p.title}:" if p.title else ""
        lines.append(f"[{i}]{tag}{title} {' '.join(p.text.split())}")
    return "\n".join(lines)


def answer_span(generation: str | None) -> str:
    """The first non-empty line of a generation, without a leading "Answer:" label."""
    if not generation:
        return ""
    for line in generation.splitlines():
        line = line.strip()
        if line.lower().startswith("answer:"):
            line = line[len("answer:"):].strip()
        if line:
            return line
    return ""


def golds(query: Query) -> list[str]:
    answers = query.extra.get("answers", [])
    return [answers] if isinstance(answers, str) else [str(a) for a in answers]


@dataclasses.dataclass
class StrategyInputs:
    """What the generator sees for one question: the prompt and the passages behind it."""

    prompt: str
    hits: list[Hit]
    passages: list[Passage]
    question_en: str | None = None


def _by_id(index) -> dict[str, Passage]:
    table = getattr(index, "_passage_by_id", None)
    if table is None:
        table = {p.id: p for p in index.passages}
        index._passage_by_id = table
    return table


def prepare(strategy: str, queries: Sequence[Query], index, *, translator=None, k: int = 5,
            pivot: str = PIVOT, perturb: Callable | None = None,
            stats: TranslationStats | None = None) -> list[StrategyInputs]:
    """Retrieve, translate and fill the strategy's template for every query.

    ``translator``: the LLM client that translates (tRAG, CrossRAG); ``perturb(query, passages)
    -> passages`` (robustness runs) reorders or extends the retrieved passages."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy in ("trag", "crossrag") and translator is None:
        raise ValueError(f"{strategy} needs a translator (an LLMClient)")
    stats = stats if stats is not None else TranslationStats()
    queries = list(queries)
    texts = [q.text for q in queries]
    langs = [q.language for q in queries]
    question_en = None
    if strategy == "norag":
        hits = [[] for _ in queries]
    elif strategy == "monorag":
        missing = sorted({lang for lang in langs if lang not in index.scopes})
        if missing:
            raise ValueError(f"monorag: the index has no corpus for {missing}; index passages "
                             f"in those languages (scopes: {sorted(index.scopes)})")
        hits = index.search(texts, k, scope=langs, languages=langs)
    elif strategy == "trag":
        if pivot not in index.scopes:
            raise ValueError(f"trag: the index has no {pivot!r} corpus")
        question_en, s = translate(translator, texts, langs, pivot)
        stats.add(s)
        hits = index.search(question_en, k, scope=pivot, languages=[pivot] * len(queries))
    else:
        hits = index.search(texts, k, scope=ALL, languages=langs)
    by_id = _by_id(index) if strategy != "norag" else {}
    passages = [[by_id[h.doc_id] for h in hs] for hs in hits]
    if perturb is not None:
        passages = [list(perturb(q, ps)) for q, ps in zip(queries, passages)]
    if strategy == "crossrag":
        flat = [p for ps in passages for p in ps]
        translated, s = translate(translator, [p.text for p in flat],
                                  [p.language for p in flat], pivot)
        stats.add(s)
        it = iter(translated)
        passages = [[dataclasses.replace(p, text=next(it), language=pivot) for p in ps]
                    for ps in passages]
    out = []
    for i, q in enumerate(queries):
        prompt = TEMPLATES[strategy].format(
            language_name=language_name(q.language), question=q.text,
            question_en=question_en[i] if question_en else "",
            documents=format_documents(passages[i]))
        out.append(StrategyInputs(prompt, hits[i], passages[i],
                                  question_en[i] if question_en else None))
    return out


def generate(client, prompts: Sequence[str], *, max_tokens: int = 64, temperature: float = 0.0,
             seed: int | None = None):
    return client.chat([[{"role": "user", "content": p}] for p in prompts],
                       temperature=temperature, max_tokens=max_tokens, seed=seed)


def run_strategies(queries: Sequence[Query], index, generator, *, strategies=STRATEGIES,
                   translator=None, k: int = 5, max_tokens: int = 64, pivot: str = PIVOT,
                   answer_language: Callable | None = None, perturb=None) -> dict:
    """Every strategy on every query: {"records": [...], "translation": stats, "usage": ...}.

    ``generator``/``translator``: LLM clients (the translator defaults to the generator)."""
    translator = translator or generator
    answer_language = answer_language or AnswerLanguage()
    stats = TranslationStats()
    records = []
    for strategy in strategies:
        inputs = prepare(strategy, queries, index, translator=translator, k=k, pivot=pivot,
                         perturb=perturb, stats=stats)
        results = generate(generator, [x.prompt for x in inputs], max_tokens=max_tokens)
        spans = [answer_span(r.text) for r in results]
        labels = answer_language(spans)
        for q, x, r, span, label in zip(queries, inputs, results, spans, labels):
            records.append({
                "id": q.id, "strategy": strategy, "language": q.language, "question": q.text,
                "question_en": x.question_en, "hits": [h.to_dict() for h in x.hits],
                "documents": [p.id for p in x.passages], "prompt": x.prompt,
                "generation": r.text, "error": r.error, "answer": span, "golds": golds(q),
                "em": flexible_exact_match(span, golds(q)), "answer_language": label,
                "language_ok": float(label == q.language.split("_")[0])})
    return {"records": records, "translation": stats.to_dict(),
            "usage": {"generator": generator.usage, "translator": translator.usage}}
