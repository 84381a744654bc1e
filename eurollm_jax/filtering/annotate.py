"""EuroFilter annotation job: an instruct LLM grades documents 0-5 for educational value.

The rubric (``RUBRIC``, our own wording of the FineWeb-Edu idea) is additive: one point per
criterion met, so the grade is a count. The model must end its answer with
``Educational score: <0-5>``; ``parse_score`` accepts that and a few looser forms (``Score: 4``,
``**4/5**``, a last standalone digit), and returns None when nothing parses, so a bad answer
is recorded, never guessed.

Every model call goes through the one LLM client, ``eurollm_jax.llm.LLMClient``; two thin
adapters keep the job's settings (chat or completion mode, answer length) and implement
``complete(prompts: list[str]) -> list[str]`` and ``answer(prompts) -> list[LLMResult]``:

- ``OpenAIClient``: any OpenAI-compatible server (``launch.serve``, vLLM, TGI, llama.cpp, a
  hosted API) through the ``openai`` package, ``/v1/chat/completions`` (``mode="chat"``) or
  ``/v1/completions`` (``mode="completions"``), concurrent requests, retries with backoff;
- ``InProcessClient``: the framework's engine (``eurollm_jax.inference``, imported lazily),
  ChatML prompts when the tokenizer has the chat tokens, greedy.
An ``LLMClient`` may be passed to ``annotate`` directly (chat mode).

``annotate(docs, client, path)`` appends one JSON line per document
(``id, text, language, score, raw, model, prompt_version``, plus ``error`` when the request
failed) and flushes each batch; a rerun skips ids already in the file (a torn last line from
a crash is ignored), so the job resumes.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Iterable, Protocol

from eurollm_jax.filtering.config import ANNOTATE_MODES, AnnotateSection
from eurollm_jax.filtering.core import Document
from eurollm_jax.llm import LLMClient, LLMResult

PROMPT_VERSION = "eurofilter-edu-v1"

RUBRIC = """You are rating web pages for how useful they would be to teach a school or university \
student something. Read the extract and award points with this additive scale:

- Give 1 point if the extract contains some information relevant to an educational topic, \
even if it is mixed with advertising, navigation or other unrelated material.
- Add a 2nd point if it covers a topic that matters for education in a coherent way, \
although it may be incomplete, disorganised or written for a general audience.
- Add a 3rd point if it is suitable for learning: it explains key concepts clearly, in \
well-formed sentences, at the level of school or introductory university material.
- Add a 4th point if it is highly relevant and useful for teaching, well structured and \
focused, like a chapter of a textbook or a good tutorial, with little irrelevant content.
- Add a 5th point if it is outstanding educational material: clear, thorough, with \
examples or exercises, and no distracting content.

Give 0 points to spam, navigation menus, word lists, repeated or garbled text, and pages \
with no educational content. The extract may be in any language; judge its content, not its \
language.

Extract:
<<<
{text}
>>>

Explain your reasoning in at most 80 words, then finish with the line
"Educational score: <points>" where <points> is an integer from 0 to 5."""

_SCORE_PATTERNS = (
    re.compile(r"educational\s+score\s*[:=]?\s*\**\s*([0-5])(?:\s*/\s*5)?\b", re.I),
    re.compile(r"\b(?:score|points?|grade|rating|note|punkte|puntuaci[oó]n|punteggio)"
               r"\s*[:=]\s*\**\s*([0-5])\b", re.I),
    re.compile(r"\b([0-5])\s*/\s*5\b"),
    re.compile(r"\b([0-5])\s*(?:points?|out of 5)\b", re.I),
)


def parse_score(answer: str | None) -> int | None:
    """The 0-5 grade in an LLM answer, or None. The last match of the strictest pattern wins."""
    if not answer:
        return None
    for pat in _SCORE_PATTERNS:
        found = pat.findall(answer)
        if found:
            return int(found[-1])
    tail = answer.strip()[-40:]
    found = re.findall(r"(?<![\d.])([0-5])(?![\d.]|\s*/\s*[0-9])", tail)
    return int(found[-1]) if found else None


def build_prompt(text: str, max_chars: int = 6000) -> str:
    """The rubric with the document (truncated to ``max_chars`` characters) filled in."""
    if len(text) > max_chars:
        text = text[:max_chars] + " [...]"
    return RUBRIC.format(text=text)


class AnswerClient(Protocol):
    """What the annotation job needs from a model: prompts in, answers out (same order).
    ``answer`` (optional) returns ``eurollm_jax.llm.LLMResult`` so that failures are recorded."""

    name: str

    def complete(self, prompts: list[str]) -> list[str]:
        ...


class _Adapter:
    """Prompts -> answers over an ``eurollm_jax.llm.LLMClient`` in chat or completion mode."""

    llm: LLMClient
    chat: bool
    max_tokens: int
    temperature: float = 0.0
    batch_size: int = 0  # 0: the whole list in one client call
    raise_errors: bool = False

    def answer(self, prompts: list[str]) -> list[LLMResult]:
        step = self.batch_size or max(len(prompts), 1)
        out: list[LLMResult] = []
        for i in range(0, len(prompts), step):
            chunk = prompts[i:i + step]
            kw = dict(temperature=self.temperature, max_tokens=self.max_tokens)
            if self.chat:
                out += self.llm.chat([[{"role": "user", "content": p}] for p in chunk], **kw)
            else:
                out += self.llm.complete(chunk, **kw)
        if self.raise_errors:
            for r in out:
                if r.error is not None:
                    raise RuntimeError(f"request to {self.name} failed ({r.error}); retried "
                                       f"up to {getattr(self, 'retries', 0)} times")
        return out

    def complete(self, prompts: list[str]) -> list[str]:
        """Answers as text; a failed request gives "" (parsed as no score)."""
        return [r.text or "" for r in self.answer(prompts)]

    def close(self) -> None:
        self.llm.close()


class OpenAIClient(_Adapter):
    """Any OpenAI-compatible HTTP endpoint through ``eurollm_jax.llm.LLMClient`` (the
    ``openai`` package).

    ``base_url`` is the server root (``http://127.0.0.1:8000`` or ``.../v1``). Requests run
    ``concurrency`` at a time; transient errors (connection, timeouts, 408/409/429, 5xx) are
    retried ``retries`` times with backoff; a request that still fails yields ``""`` for its
    prompt (parsed as no score, its error recorded) unless ``raise_errors``. ``cache_dir``:
    the client's persistent response cache (a rerun sends no finished request again).
    """

    # Defaults: the filter config's annotate section (config.AnnotateSection).
    def __init__(self, base_url: str, model: str = AnnotateSection.model, *,
                 mode: str = AnnotateSection.mode, api_key: str | None = None,
                 max_tokens: int = AnnotateSection.max_new_tokens, temperature: float = 0.0,
                 timeout: float = 120.0, concurrency: int = AnnotateSection.concurrency,
                 retries: int = 3, raise_errors: bool = False, cache_dir: str | None = None):
        if mode not in ANNOTATE_MODES:
            raise ValueError(f"mode must be 'chat' or 'completions', got {mode!r}")
        self.llm = LLMClient.from_endpoint(base_url, model, api_key=api_key,
                                           concurrency=concurrency, timeout=timeout,
                                           max_retries=retries, cache_dir=cache_dir)
        self.model, self.mode, self.chat = model, mode, mode == "chat"
        self.max_tokens, self.temperature = max_tokens, temperature
        self.concurrency, self.retries, self.raise_errors = concurrency, retries, raise_errors
        self.name = self.llm.name


class InProcessClient(_Adapter):
    """The framework's inference engine in this process (greedy, ChatML when available),
    through ``eurollm_jax.llm.LLMClient.from_engine``.

    ``model`` is a ``Transformer`` or an ``eurollm_jax.inference.Engine``; ``tokenizer`` the
    SentencePiece tokenizer (see ``eurollm_jax.inference.load_for_inference``).
    """

    def __init__(self, model, tokenizer, *, max_new_tokens: int = AnnotateSection.max_new_tokens,
                 chat: bool | None = None, batch_size: int = 8, name: str = "in-process",
                 cache_dir: str | None = None):
        import eurollm_jax.inference as inference  # lazy: pulls in the engine only when used

        self.engine = inference.as_engine(model, tokenizer)  # built once, reused per chunk
        self.tokenizer = tokenizer
        self.llm = LLMClient.from_engine(self.engine, model_name=name, cache_dir=cache_dir)
        self.max_tokens, self.batch_size, self.name = max_new_tokens, batch_size, name
        # Without <|im_start|>/<|im_end|> in the vocabulary: plain completion.
        self.chat = inference.has_chat_markers(tokenizer) if chat is None else chat

    @property
    def max_new_tokens(self) -> int:
        return self.max_tokens


def _answers(client, prompts: list[str]) -> list[LLMResult]:
    if isinstance(client, LLMClient):  # the shared client itself: chat mode
        return client.chat([[{"role": "user", "content": p}] for p in prompts],
                           max_tokens=AnnotateSection.max_new_tokens)
    if hasattr(client, "answer"):
        return client.answer(prompts)
    return [LLMResult(text=a) for a in client.complete(prompts)]


def _done_ids(path: str) -> set[str]:
    done: set[str] = set()
    if not os.path.exists(path):
        return done
    good_end = 0
    with open(path, "r+b") as f:  # line by line: the file holds every annotated text
        for line in f:
            try:
                done.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    break  # a torn line (crash mid-write): drop it and everything after
            good_end += len(line)
        if good_end < f.seek(0, os.SEEK_END):  # cut the torn tail: appends start on a clean line
            f.truncate(good_end)
    return done


def annotate(docs: Iterable[Document], client, path: str, *,
             batch_size: int = AnnotateSection.batch_size, max_chars: int = 6000,
             progress: bool = False) -> dict[str, int]:
    """Grades documents with ``client`` into the JSONL file ``path`` (resumable).

    Returns counts: ``annotated`` (this call), ``skipped`` (already in the file) and
    ``unparsed`` (answers without a score, failed requests included; stored with
    ``score: null``) and ``errors`` (failed requests; their ``error`` is stored).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    done = _done_ids(path)
    stats = {"annotated": 0, "skipped": 0, "unparsed": 0, "errors": 0}
    batch: list[Document] = []
    t0 = time.time()

    def flush(f):
        answers = _answers(client, [build_prompt(d.text, max_chars) for d in batch])
        if len(answers) != len(batch):
            raise RuntimeError(f"client {client.name} returned {len(answers)} answers for "
                               f"{len(batch)} prompts")
        for d, res in zip(batch, answers):
            a = res.text or ""
            score = parse_score(a)
            stats["annotated"] += 1
            stats["unparsed"] += score is None
            record = {"id": d.id, "text": d.text, "language": d.metadata.get("language"),
                      "score": score, "raw": a, "model": client.name,
                      "prompt_version": PROMPT_VERSION}
            if res.error is not None:
                stats["errors"] += 1
                record["error"] = res.error
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            done.add(d.id)
        f.flush()
        os.fsync(f.fileno())
        batch.clear()
        if progress:
            rate = stats["annotated"] / max(time.time() - t0, 1e-9)
            print(f"[annotate] {stats['annotated']:,} annotated, {rate:.2f} docs/s",
                  flush=True)

    with open(path, "a", encoding="utf-8") as f:
        for d in docs:
            if d.id in done:
                stats["skipped"] += 1
                continue
            batch.append(d)
            if len(batch) >= batch_size:
                flush(f)
        if batch:
            flush(f)
    return stats


def read_annotations(path: str, require_score: bool = True) -> list[dict]:
    """Annotation records (by default only those with a parsed score)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if not require_score or r.get("score") is not None:
                out.append(r)
    return out
