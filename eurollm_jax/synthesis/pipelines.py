"""The three synthesis pipelines: seeds in, steps, SFT records out.

Each pipeline is a ``Pipeline``: ``seed_record`` (one seed JSON object -> a job record, with an
error naming the line and the fix for a bad seed), ``plan`` (facts of the whole seed set the
steps need, e.g. which languages lack data; computed once by the driver and stored with the
job), ``steps(plan)`` and ``to_sft`` (a finished record -> an SFT record of
``eurollm_jax.data.sft``'s schema: ChatML ``messages``, loss on the assistant turn only, plus
metadata keys).

- ``euroblocks``: seeds ``{"language", "prompt"}`` -> answer (system: reply in the language) ->
  translation of pairs from ``translate_from`` languages into the languages with fewer than
  ``min_per_language`` seeds -> judge score 1-10 >= ``judge_threshold`` -> language ID of
  prompt and answer -> exact + MinHash near-dedup -> ``{"messages": [user, assistant]}``.
- ``xl_instruct``: seeds ``{"language", "text"}`` (a target-language document) -> an English
  instruction the document answers (after ``Instruction:``; language ID says English) ->
  ``num_candidates`` target-language responses (seeds 0..n-1) -> refinement (after ``Refined
  response:``) -> language ID of the response -> judge score -> the best candidate per
  document -> the top K per language.
- ``context``: seeds ``{"task", "question", "answer"}`` -> the missing background context
  (about ``context_words`` words, after ``Context:``) -> + the contexts of
  ``num_distractors`` other samples of the task, the ten shuffled and joined by blank lines ->
  the task's template as the user turn, the gold answer as the assistant turn; the total length
  (characters, words, and tokens with a tokenizer) is recorded.

Seeds may carry an ``"id"``; without one a seed is named ``<file stem>:<line>``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eurollm_jax.languages import EU_LANGUAGES, LANGUAGE_NAMES
from eurollm_jax.synthesis.config import SynthesisConfig
from eurollm_jax.synthesis.steps import (
    BestPerGroup,
    Call,
    LanguageCheck,
    LLMStep,
    NearDedup,
    Step,
    after_marker,
    parse_judge_score,
    seeded_rng,
)



class SeedError(ValueError):
    """A seed record the pipeline cannot use; the message names the line and the fix."""


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def stable_seed(*parts: Any) -> int:
    """A 31-bit sampling seed from the record id (the same on every run and process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _text_field(raw: dict, field: str, where: str, hint: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise SeedError(f"seed {where}: needs a non-empty string {field!r} ({hint})")
    return value.strip()


def _language(raw: dict, where: str, hint: str) -> str:
    lang = _text_field(raw, "language", where, hint)
    if lang not in EU_LANGUAGES:
        raise SeedError(f"seed {where}: language {lang!r} is not an ISO 639-1 code of the EU "
                        f"languages ({', '.join(EU_LANGUAGES)})")
    return lang


# ----------------------------------------------------------------------------- prompts
JUDGE_PROMPT = """You are judging an AI assistant's answer to a user's request.
Rate the answer from 1 (useless, wrong or harmful) to 10 (correct, complete, helpful and \
well written). {language_rule}

Request:
<<<
{prompt}
>>>

Answer:
<<<
{answer}
>>>

Explain your rating in at most 60 words, then finish with the line "Score: <1-10>"."""

TRANSLATE_PROMPT = """Translate the following text from {source} into {target}. Keep the \
meaning, the formatting and any code unchanged. Reply with the translation only.

Text:
{text}"""

BACK_TRANSLATE_PROMPT = """Here is a document written in {language}:
<<<
{document}
>>>

Write one instruction or question in English that a user could ask and that this document's \
content answers well. Reply in the form:
Instruction: <the English instruction>"""

RESPOND_PROMPT = """Use the following document, written in {language}, to answer the user's \
request.
<<<
{document}
>>>

Request (in English): {instruction}

Answer in {language} only, helpfully and completely. Reply with the answer only."""

REFINE_PROMPT = """A user asked (in English): {instruction}
A first answer in {language}:
<<<
{response}
>>>

Improve the answer: correct mistakes, make it clearer and more complete, and keep it in \
{language}. Reply in the form:
Refined response: <the improved answer in {language}>"""

CONTEXT_PROMPT = """Here is a question and its answer:
Question: {question}
Answer: {answer}

Write the background context, about {words} words long, from which this answer can be \
derived: it must contain every fact needed for the answer, written as a natural document \
(an article, a report or a story), without stating the question. Begin your reply with \
"Context:"."""

DEFAULT_TEMPLATES = {
    "single_doc_qa": ("Read the following text and answer the question.\n\n{context}\n\n"
                      "Answer the question based on the text above. Only give the answer.\n\n"
                      "Question: {question}\nAnswer:"),
    "multi_doc_qa": ("Answer the question based on the given passages.\n\nThe passages:\n"
                     "{context}\n\nAnswer the question based on the passages above. Only give "
                     "the answer.\n\nQuestion: {question}\nAnswer:"),
    "summarization": ("You are given several documents.\n\n{context}\n\nNow, based on the "
                      "documents above: {question}\n\nSummary:"),
}
GENERIC_TEMPLATE = "{context}\n\n{question}"


def _judge_call(prompt: str, answer: str, language: str, max_tokens: int) -> Call:
    rule = (f"The answer must be written in {language_name(language)}; an answer in another "
            f"language gets at most 2.")
    return Call.user(JUDGE_PROMPT.format(language_rule=rule, prompt=prompt, answer=answer),
                     max_tokens=max_tokens)


# ----------------------------------------------------------------------------- euroblocks
class GenerateAnswer(LLMStep):
    name = "generate_answer"

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        system = f"You are a helpful assistant. Reply in {language_name(r['language'])}."
        return [Call.user(r["prompt"], system=system, temperature=self.s.answer_temperature,
                          max_tokens=self.s.answer_max_tokens, seed=stable_seed(r["id"]))]

    def parse(self, r, results, ctx):
        answer = (results[0].text or "").strip()
        return [dict(r, answer=answer)] if answer else "empty_answer"


def _strip_translation(text: str | None) -> str:
    text = (text or "").strip()
    marked = after_marker(text, "Translation:") if text.lower().startswith(
        ("translation", "**translation")) else None
    return (marked or text).strip()


class Translate(LLMStep):
    """Keeps each pair and adds its translations into ``targets`` (pairs whose language is in
    ``translate_from``); a failed or empty translation drops that translation only."""

    name = "translate"
    all_or_nothing = False

    def __init__(self, s, targets):
        self.s, self.targets = s, tuple(targets)

    def _targets(self, r):
        if r["language"] not in self.s.translate_from:
            return ()
        return tuple(t for t in self.targets if t != r["language"])

    def calls(self, r):
        out = []
        for t in self._targets(r):
            for text in (r["prompt"], r["answer"]):
                out.append(Call.user(TRANSLATE_PROMPT.format(
                    source=language_name(r["language"]), target=language_name(t), text=text),
                    max_tokens=self.s.translate_max_tokens))
        return out

    def parse(self, r, results, ctx):
        base = {k: v for k, v in r.items() if k != "audit"}
        out = [r]
        for k, t in enumerate(self._targets(r)):
            pres, ares = results[2 * k], results[2 * k + 1]
            tr = dict(base, id=f"{r['id']}>{t}", language=t, translated_from=r["language"],
                      seed_id=r["seed_id"], audit=list(r.get("audit", [])[:-1]) + [
                          {"step": self.name, "raw": [pres.text, ares.text]}])
            failed = pres if pres.error else ares if ares.error else None
            if failed is not None:
                self.drop_part(ctx, tr, f"llm_error:{failed.error_kind}")
                continue
            prompt, answer = _strip_translation(pres.text), _strip_translation(ares.text)
            if not prompt or not answer:
                self.drop_part(ctx, tr, "empty_translation")
                continue
            out.append(dict(tr, prompt=prompt, answer=answer))
        return out


class JudgePair(LLMStep):
    name = "judge"

    def __init__(self, threshold: float, max_tokens: int):
        self.threshold, self.max_tokens = float(threshold), int(max_tokens)

    def calls(self, r):
        return [_judge_call(r["prompt"], r["answer"], r["language"], self.max_tokens)]

    def parse(self, r, results, ctx):
        score = parse_judge_score(results[0].text)
        if score is None:
            return "judge_unparseable"
        r = dict(r, judge_score=score)
        return [r] if score >= self.threshold else "below_threshold"


class EuroBlocks:
    name = "euroblocks"
    hint = 'write {"language": "de", "prompt": "..."}'

    def __init__(self, cfg: SynthesisConfig):
        self.cfg, self.s = cfg, cfg.euroblocks

    def seed_record(self, raw: dict, rid: str, where: str) -> dict:
        lang = _language(raw, where, self.hint)
        prompt = _text_field(raw, "prompt", where, self.hint)
        return {"id": rid, "seed_id": rid, "language": lang, "prompt": prompt}

    def plan(self, seeds: list[dict]) -> dict:
        counts = {lang: 0 for lang in self.s.languages}
        for r in seeds:
            counts[r["language"]] = counts.get(r["language"], 0) + 1
        targets = [lang for lang in self.s.languages
                   if counts.get(lang, 0) < self.s.min_per_language]
        return {"seed_counts": counts, "translate_targets": targets}

    def steps(self, plan: dict) -> list[Step]:
        s = self.s
        field = s.dedup_field
        return [
            GenerateAnswer(s),
            Translate(s, plan["translate_targets"]),
            JudgePair(s.judge_threshold, s.judge_max_tokens),
            LanguageCheck(("prompt", "answer"), threshold=s.langid_threshold),
            NearDedup(self.cfg.dedup, (lambda r: r["prompt"]) if field == "prompt"
                      else (lambda r: r["prompt"] + "\n" + r["answer"])),
        ]

    def to_sft(self, r: dict) -> dict:
        messages = ([{"role": "system", "content": self.s.system_prompt}]
                    if self.s.system_prompt else [])
        messages += [{"role": "user", "content": r["prompt"]},
                     {"role": "assistant", "content": r["answer"]}]
        out = {"id": r["id"], "messages": messages, "source": self.cfg.job.source_name,
               "language": r["language"], "judge_score": r["judge_score"], "seed_id": r["seed_id"]}
        if "translated_from" in r:
            out["translated_from"] = r["translated_from"]
        return out

    def group_of(self, sft: dict) -> str:
        return sft["language"]


# ----------------------------------------------------------------------------- XL-Instruct
class BackTranslate(LLMStep):
    name = "back_translate"

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        doc = r["document"][:self.s.max_doc_chars]
        return [Call.user(BACK_TRANSLATE_PROMPT.format(language=language_name(r["language"]),
                                                       document=doc),
                          max_tokens=self.s.instruction_max_tokens)]

    def parse(self, r, results, ctx):
        instruction = after_marker(results[0].text, "Instruction:")
        if instruction is None:
            return "no_marker"
        return [dict(r, instruction=instruction.strip().splitlines()[0].strip() or instruction)]


class Respond(LLMStep):
    """One record per candidate (sampling seed = candidate index); a failed or empty
    candidate is dropped alone."""

    name = "respond"
    all_or_nothing = False

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        doc = r["document"][:self.s.max_doc_chars]
        prompt = RESPOND_PROMPT.format(language=language_name(r["language"]), document=doc,
                                       instruction=r["instruction"])
        return [Call.user(prompt, temperature=self.s.response_temperature,
                          max_tokens=self.s.response_max_tokens, seed=c)
                for c in range(self.s.num_candidates)]

    def parse(self, r, results, ctx):
        out = []
        for c, res in enumerate(results):
            cand = dict(r, id=f"{r['id']}#{c}", candidate=c,
                        audit=list(r.get("audit", [])[:-1]) + [
                            {"step": self.name, "raw": [res.text]}])
            if res.error:
                self.drop_part(ctx, cand, f"llm_error:{res.error_kind}")
            elif not (res.text or "").strip():
                self.drop_part(ctx, cand, "empty_response")
            else:
                out.append(dict(cand, response=res.text.strip()))
        return out


class Refine(LLMStep):
    name = "refine"

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        prompt = REFINE_PROMPT.format(instruction=r["instruction"], response=r["response"],
                                      language=language_name(r["language"]))
        return [Call.user(prompt, max_tokens=self.s.response_max_tokens)]

    def parse(self, r, results, ctx):
        refined = after_marker(results[0].text, "Refined response:")
        if refined is None:
            return "no_marker"
        return [dict(r, draft=r["response"], response=refined)]


class JudgeResponse(LLMStep):
    name = "judge"

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        return [_judge_call(r["instruction"], r["response"], r["language"],
                            self.s.judge_max_tokens)]

    def parse(self, r, results, ctx):
        score = parse_judge_score(results[0].text)
        if score is None:
            return "judge_unparseable"
        return [dict(r, score=score)] if score >= self.s.min_score else "below_min_score"


class XLInstruct:
    name = "xl_instruct"
    hint = 'write {"language": "de", "text": "<a German document>"}'

    def __init__(self, cfg: SynthesisConfig):
        self.cfg, self.s = cfg, cfg.xl_instruct

    def seed_record(self, raw: dict, rid: str, where: str) -> dict:
        lang = _language(raw, where, self.hint)
        text = _text_field(raw, "text", where, self.hint)
        return {"id": rid, "seed_id": rid, "language": lang, "document": text}

    def plan(self, seeds: list[dict]) -> dict:
        return {}

    def steps(self, plan: dict) -> list[Step]:
        s = self.s
        return [
            BackTranslate(s),
            LanguageCheck(("instruction",), threshold=s.langid_threshold,
                          name="instruction_language", fixed={"instruction": "en"}),
            Respond(s),
            Refine(s),
            LanguageCheck(("response",), threshold=s.langid_threshold,
                          name="response_language"),
            JudgeResponse(s),
            BestPerGroup(lambda r: r["seed_id"], 1, "not_best_candidate", "best_candidate"),
            BestPerGroup(lambda r: r["language"], s.top_k, "below_top_k", "top_k"),
        ]

    def to_sft(self, r: dict) -> dict:
        return {"id": r["id"], "source": self.cfg.job.source_name,
                "messages": [{"role": "user", "content": r["instruction"]},
                             {"role": "assistant", "content": r["response"]}],
                "language": r["language"], "prompt_language": "en", "score": r["score"],
                "candidate": r["candidate"], "seed_id": r["seed_id"]}

    def group_of(self, sft: dict) -> str:
        return sft["language"]


# ----------------------------------------------------------------------------- context
class SynthesizeContext(LLMStep):
    name = "synthesize_context"

    def __init__(self, s):
        self.s = s

    def calls(self, r):
        prompt = CONTEXT_PROMPT.format(question=r["question"], answer=r["answer"],
                                       words=self.s.context_words)
        return [Call.user(prompt, temperature=self.s.temperature, max_tokens=self.s.max_tokens,
                          seed=stable_seed(r["id"]))]

    def parse(self, r, results, ctx):
        context = after_marker(results[0].text, self.s.marker)
        if context is None:
            return "no_marker"
        if len(context.split()) < self.s.min_context_words:
            return "context_too_short"
        return [dict(r, context=context)]


class AddDistractors(Step):
    """Each record gets the contexts of ``num_distractors`` other records of its task (chosen
    and shuffled by a generator seeded with the record id), joined by blank lines."""

    name = "distractors"
    scope = "global"

    def __init__(self, s):
        self.s = s

    def process(self, records, ctx):
        by_task: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_task.setdefault(r["task"], []).append(i)
        out = []
        for i, r in enumerate(records):
            rng = seeded_rng(self.s.seed, r["id"])
            others = [j for j in by_task[r["task"]] if j != i]
            chosen = rng.sample(others, min(self.s.num_distractors, len(others)))
            order = [i] + chosen
            rng.shuffle(order)
            out.append(dict(r, full_context="\n\n".join(records[j]["context"] for j in order),
                            context_ids=[records[j]["id"] for j in order],
                            num_distractors=len(chosen)))
        return out


class WrapTemplate(Step):
    """The task's template around the contexts and the question; the total length recorded."""

    name = "wrap"
    scope = "record"

    def __init__(self, s):
        self.s = s
        self._tok = None

    def _tokenizer(self):
        if self._tok is None and self.s.tokenizer:
            from eurollm_jax.tokenizer import Tokenizer

            self._tok = Tokenizer.load(self.s.tokenizer)
        return self._tok

    def process(self, records, ctx):
        out = []
        for r in records:
            template = (self.s.templates.get(r["task"]) or DEFAULT_TEMPLATES.get(r["task"])
                        or GENERIC_TEMPLATE)
            user = template.format(context=r["full_context"], question=r["question"])
            length = {"chars": len(user) + len(r["answer"]),
                      "words": len(user.split()) + len(r["answer"].split())}
            tok = self._tokenizer()
            if tok is not None:
                from eurollm_jax.tokenizer import chat_template

                ids, _ = chat_template.render_ids(tok, [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": r["answer"]}])
                length["tokens"] = len(ids)
            out.append(dict(r, user=user, length=length))
        return out


class ContextSynthesis:
    name = "context"
    hint = 'write {"task": "single_doc_qa", "question": "...", "answer": "..."}'

    def __init__(self, cfg: SynthesisConfig):
        self.cfg, self.s = cfg, cfg.context

    def seed_record(self, raw: dict, rid: str, where: str) -> dict:
        return {"id": rid, "seed_id": rid, "task": _text_field(raw, "task", where, self.hint),
                "question": _text_field(raw, "question", where, self.hint),
                "answer": _text_field(raw, "answer", where, self.hint)}

    def plan(self, seeds: list[dict]) -> dict:
        tasks: dict[str, int] = {}
        for r in seeds:
            tasks[r["task"]] = tasks.get(r["task"], 0) + 1
        return {"tasks": tasks}

    def steps(self, plan: dict) -> list[Step]:
        return [SynthesizeContext(self.s), AddDistractors(self.s), WrapTemplate(self.s)]

    def to_sft(self, r: dict) -> dict:
        return {"id": r["id"], "source": self.cfg.job.source_name,
                "messages": [{"role": "user", "content": r["user"]},
                             {"role": "assistant", "content": r["answer"]}],
                "task": r["task"], "length": r["length"], "context_ids": r["context_ids"],
                "num_distractors": r["num_distractors"], "seed_id": r["seed_id"]}

    def group_of(self, sft: dict) -> str:
        return sft["task"]


PIPELINES = {"euroblocks": EuroBlocks, "xl_instruct": XLInstruct, "context": ContextSynthesis}


def get_pipeline(cfg: SynthesisConfig):
    return PIPELINES[cfg.job.pipeline](cfg)
