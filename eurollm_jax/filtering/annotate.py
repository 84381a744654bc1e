"""EuroFilter annotation job: an instruct LLM grades documents 0-5 for educational value.

The rubric (``RUBRIC``, our own wording of the FineWeb-Edu idea) is additive: one point per
criterion met, so the grade is a count. The model must end its answer with
``Educational score: <0-5>``; ``parse_score`` accepts that and a few looser forms (``Score: 4``,
``**4/5**``, a last standalone digit), and returns None when nothing parses, so a bad answer
is recorded, never guessed.

Clients implement ``complete(prompts: list[str]) -> list[str]`` (``LLMClient``):

- ``OpenAIClient``: any OpenAI-compatible server (``launch.serve``, vLLM, TGI, llama.cpp, a
  hosted API), ``/v1/chat/completions`` (``mode="chat"``) or ``/v1/completions``
  (``mode="completions"``), standard library only, concurrent requests, retries with backoff;
- ``InProcessClient``: the framework's engine (``eurollm_jax.inference``, imported lazily),
  ChatML prompts through ``generate_chat`` when the tokenizer has the chat tokens, greedy.

``annotate(docs, client, path)`` appends one JSON line per document
(``id, text, language, score, raw, model, prompt_version``) and flushes each batch; a rerun
skips ids already in the file (a torn last line from a crash is ignored), so the job resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Iterable, Protocol

from eurollm_jax.filtering.config import ANNOTATE_MODES, AnnotateSection
from eurollm_jax.filtering.core import Document

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


class LLMClient(Protocol):
    """What the annotation job needs from a model: prompts in, answers out (same order)."""

    name: str

    def complete(self, prompts: list[str]) -> list[str]:
        ...


class OpenAIClient:
    """A client for an OpenAI-compatible HTTP endpoint (standard library only).

    ``base_url`` is the server root (``http://127.0.0.1:8000`` or ``.../v1``). Requests run
    ``concurrency`` at a time; transient errors (connection, 429, 5xx) are retried
    ``retries`` times with exponential backoff; a request that still fails yields ``""`` for
    its prompt (parsed as no score) unless ``raise_errors``.
    """

    # Defaults: the filter config's annotate section (config.AnnotateSection).
    def __init__(self, base_url: str, model: str = AnnotateSection.model, *,
                 mode: str = AnnotateSection.mode, api_key: str | None = None,
                 max_tokens: int = AnnotateSection.max_new_tokens, temperature: float = 0.0,
                 timeout: float = 120.0, concurrency: int = AnnotateSection.concurrency,
                 retries: int = 3, raise_errors: bool = False):
        if mode not in ANNOTATE_MODES:
            raise ValueError(f"mode must be 'chat' or 'completions', got {mode!r}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be the http(s) root of an OpenAI-compatible server you run or "
                f"trust (e.g. http://127.0.0.1:8000 from `python -m launch.serve`), got {base_url!r}"
            )
        base = base_url.rstrip("/")
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.model, self.mode, self.api_key = model, mode, api_key
        self.max_tokens, self.temperature, self.timeout = max_tokens, temperature, timeout
        self.concurrency, self.retries, self.raise_errors = concurrency, retries, raise_errors
        self.name = f"openai:{model}@{self.base}"

    def _request(self, prompt: str) -> str:
        # An inference request to the user's own endpoint (base_url), not a download: no
        # weights or data are fetched.
        if self.mode == "chat":
            url = self.base + "/chat/completions"
            body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": self.max_tokens, "temperature": self.temperature}
        else:
            url = self.base + "/completions"
            body = {"model": self.model, "prompt": prompt, "max_tokens": self.max_tokens,
                    "temperature": self.temperature}
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                choice = payload["choices"][0]
                if self.mode == "chat":
                    return choice["message"]["content"] or ""
                return choice.get("text") or ""
            except urllib.error.HTTPError as e:
                last = e
                if e.code not in (408, 409, 429) and e.code < 500:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError,
                    ValueError, KeyError, IndexError) as e:
                last = e
            if attempt < self.retries:
                time.sleep(min(0.25 * 2 ** attempt, 8.0))
        if self.raise_errors:
            raise RuntimeError(f"request to {url} failed after {self.retries + 1} tries: {last}")
        return ""

    def complete(self, prompts: list[str]) -> list[str]:
        if len(prompts) <= 1 or self.concurrency <= 1:
            return [self._request(p) for p in prompts]
        with cf.ThreadPoolExecutor(min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self._request, prompts))


class InProcessClient:
    """The framework's inference engine in this process (greedy, ChatML when available).

    ``model`` is a ``Transformer`` or an ``eurollm_jax.inference.Engine``; ``tokenizer`` the
    SentencePiece tokenizer (see ``eurollm_jax.inference.load_for_inference``).
    """

    def __init__(self, model, tokenizer, *, max_new_tokens: int = AnnotateSection.max_new_tokens,
                 chat: bool | None = None, batch_size: int = 8, name: str = "in-process"):
        import eurollm_jax.inference as inference  # lazy: pulls in the engine only when used

        self._inf = inference
        self.engine = inference.as_engine(model, tokenizer)  # built once, reused per chunk
        self.tokenizer = tokenizer
        self.max_new_tokens, self.batch_size, self.name = max_new_tokens, batch_size, name
        # Without <|im_start|>/<|im_end|> in the vocabulary: plain completion.
        self.chat = inference.has_chat_markers(tokenizer) if chat is None else chat

    def complete(self, prompts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            chunk = prompts[i:i + self.batch_size]
            if self.chat:
                conv = [[{"role": "user", "content": p}] for p in chunk]
                comps = self._inf.generate_chat(self.engine, conv, tokenizer=self.tokenizer,
                                                max_new_tokens=self.max_new_tokens, temperature=0.0)
            else:
                comps = self._inf.generate(self.engine, chunk, max_new_tokens=self.max_new_tokens,
                                           temperature=0.0, tokenizer=self.tokenizer)
            out.extend((c.text if getattr(c, "text", None) is not None else "") for c in comps)
        return out


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


def annotate(docs: Iterable[Document], client: LLMClient, path: str, *,
             batch_size: int = AnnotateSection.batch_size, max_chars: int = 6000,
             progress: bool = False) -> dict[str, int]:
    """Grades documents with ``client`` into the JSONL file ``path`` (resumable).

    Returns counts: ``annotated`` (this call), ``skipped`` (already in the file) and
    ``unparsed`` (answers without a score; stored with ``score: null``).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    done = _done_ids(path)
    stats = {"annotated": 0, "skipped": 0, "unparsed": 0}
    batch: list[Document] = []
    t0 = time.time()

    def flush(f):
        answers = client.complete([build_prompt(d.text, max_chars) for d in batch])
        if len(answers) != len(batch):
            raise RuntimeError(f"client {client.name} returned {len(answers)} answers for "
                               f"{len(batch)} prompts")
        for d, a in zip(batch, answers):
            score = parse_score(a)
            stats["annotated"] += 1
            stats["unparsed"] += score is None
            f.write(json.dumps({"id": d.id, "text": d.text, "language": d.metadata.get("language"),
                                "score": score, "raw": a, "model": client.name,
                                "prompt_version": PROMPT_VERSION}, ensure_ascii=False) + "\n")
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
