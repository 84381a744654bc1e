"""The transports behind ``LLMClient``: an OpenAI-compatible HTTP endpoint and the in-process
engine. Each turns a list of ``Request`` into ``LLMResult`` (same order) and never raises for
one bad request: the result carries ``error = "kind: message"``.

- ``OpenAIBackend``: the official ``openai`` package (``AsyncOpenAI``: its base_url, timeout
  and retries with backoff on connection errors, 408/409/429 and 5xx), requests run
  ``concurrency`` at a time on an event loop in a background thread, so the synchronous
  client works from any thread, inside or outside a running event loop.
- ``EngineBackend``: ``eurollm_jax.inference.Engine`` in this process: all requests of a call
  in one batched ``generate_ids`` (each row its own sampling settings; row results do not
  depend on the batch: every row uses random stream 0 of its own seed); a row that cannot
  run (too long for the context, no ChatML markers) gets an error, the others still run.

Error kinds: ``timeout``, ``connection``, ``rate_limit``, ``bad_request``, ``auth``,
``not_found``, ``context_length``, ``server_error``, ``http_<status>``, ``empty_response``,
``engine`` (an unexpected engine failure), ``client`` (anything else).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, Sequence

MODES = ("chat", "completion")


@dataclasses.dataclass(frozen=True)
class Request:
    """One request: ``payload`` is a message list (chat) or a prompt string (completion)."""

    mode: str
    payload: Any
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def params(self) -> dict:
        return {"temperature": float(self.temperature), "max_tokens": int(self.max_tokens),
                "top_p": float(self.top_p), "seed": self.seed,
                "stop": list(self.stop) if self.stop else None}


@dataclasses.dataclass
class LLMResult:
    """One answer. ``text`` is None exactly when ``error`` ("kind: message") is set."""

    text: str | None
    finish_reason: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def error_kind(self) -> str | None:
        return None if self.error is None else self.error.split(":", 1)[0]


def error_result(kind: str, message: str) -> LLMResult:
    return LLMResult(text=None, error=f"{kind}: {message}")


# ----------------------------------------------------------------------------- HTTP
def _require_openai():
    try:
        import openai
    except ImportError as e:  # pragma: no cover - the extra is installed in the dev env
        raise ImportError("the HTTP LLM client needs the `openai` package: "
                          "pip install 'eurollm_jax[llm]'") from e
    return openai


def _openai_error(openai, exc: BaseException) -> LLMResult:
    msg = str(exc).replace("\n", " ")[:500]
    if isinstance(exc, openai.APITimeoutError):
        return error_result("timeout", msg)
    if isinstance(exc, openai.APIConnectionError):
        return error_result("connection", msg)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = getattr(exc, "body", None)
        code = body.get("code") if isinstance(body, dict) else None
        if code == "context_length_exceeded":
            return error_result("context_length", msg)
        kind = {400: "bad_request", 401: "auth", 403: "auth", 404: "not_found",
                422: "bad_request", 429: "rate_limit"}.get(status)
        if kind is None:
            kind = "server_error" if status >= 500 else f"http_{status}"
        return error_result(kind, msg)
    return error_result("client", f"{type(exc).__name__}: {msg}")


class _LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="llm-client-loop",
                                       daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self):
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


def normalize_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url must be the http(s) root of an OpenAI-compatible server you run or trust "
            f"(e.g. http://127.0.0.1:8000 from `python -m launch.serve`), got {base_url!r}")
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


class OpenAIBackend:
    """An OpenAI-compatible endpoint through ``openai.AsyncOpenAI`` (see module docstring).

    ``api_key=None`` sends the placeholder "EMPTY" (local servers ignore it); the
    ``OPENAI_API_KEY`` environment variable is deliberately not read, so a hosted API key never
    reaches a local server by accident: pass it explicitly for a hosted API.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 2):
        self.openai = _require_openai()
        if int(concurrency) < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if int(max_retries) < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.concurrency = int(concurrency)
        self._loop = _LoopThread()

        async def make():
            return (self.openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key or "EMPTY",
                                            timeout=float(timeout), max_retries=int(max_retries)),
                    asyncio.Semaphore(self.concurrency))

        self._client, self._sem = self._loop.run(make())

    @property
    def name(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    async def _one(self, r: Request, index: int, on_result) -> LLMResult:
        async with self._sem:
            res = await self._request(r)
            if on_result is not None:  # before the next request starts (see LLMClient._run)
                on_result(index, res)
        return res

    async def _request(self, r: Request) -> LLMResult:
        openai = self.openai
        kwargs: dict[str, Any] = {"model": self.model, "temperature": r.temperature,
                                  "max_tokens": r.max_tokens, "top_p": r.top_p}
        if r.seed is not None:
            kwargs["seed"] = int(r.seed)
        if r.stop:
            kwargs["stop"] = list(r.stop)
        try:
            if r.mode == "chat":
                resp = await self._client.chat.completions.create(messages=r.payload, **kwargs)
            else:
                resp = await self._client.completions.create(prompt=r.payload, **kwargs)
        except Exception as e:  # noqa: BLE001 - one request never fails the batch
            return _openai_error(openai, e)
        choices = getattr(resp, "choices", None) or []
        if not choices:
            return error_result("empty_response", "the server returned no choices")
        choice = choices[0]
        text = choice.message.content if r.mode == "chat" else choice.text
        if text is None:
            return error_result("empty_response", "the answer has no content")
        usage = getattr(resp, "usage", None)
        return LLMResult(text=text, finish_reason=choice.finish_reason,
                         prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                         completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))

    def send(self, requests: Sequence[Request], on_result=None) -> list[LLMResult]:
        """Results in order; ``on_result(i, result)`` runs as each one arrives."""

        async def gather():
            return await asyncio.gather(*(self._one(r, i, on_result)
                                          for i, r in enumerate(requests)))

        return list(self._loop.run(gather())) if requests else []

    def close(self):
        if self._loop is None:
            return
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()
            self._loop = None


# ----------------------------------------------------------------------------- engine
class EngineBackend:
    """The in-process ``Engine`` (it must have a tokenizer; see module docstring)."""

    def __init__(self, engine, model_name: str = "local"):
        if getattr(engine, "tokenizer", None) is None:
            raise ValueError("LLMClient.from_engine needs an engine with a tokenizer: "
                             "Engine(model, tokenizer)")
        self.engine = engine
        self.model = model_name

    @property
    def name(self) -> str:
        return f"engine:{self.model}"

    def _prepare(self, r: Request):
        from eurollm_jax import inference  # lazy: llm imports the engine only when used

        tok = self.engine.tokenizer
        stop_ids: list[int] = []
        if r.mode == "chat":
            ids = inference.encode_chat(tok, r.payload)
            stop_ids = inference.chat_stop_ids(tok)
        else:
            ids = self.engine.encode(r.payload)
        limit = self.engine.cfg.max_seq_len
        if len(ids) + r.max_tokens > limit:
            raise _ContextLength(
                f"the prompt has {len(ids)} tokens + max_tokens {r.max_tokens} > the model's "
                f"context {limit}; shorten the prompt or ask for fewer tokens")
        samp = inference.SamplingParams(
            max_new_tokens=int(r.max_tokens), temperature=float(r.temperature),
            top_p=float(r.top_p), seed=int(r.seed or 0), stream=0,
            stop_token_ids=tuple(stop_ids), stop_strings=tuple(r.stop or ()))
        return ids, samp

    @staticmethod
    def _result(c) -> LLMResult:
        return LLMResult(text=c.text or "", finish_reason=c.finish_reason,
                         prompt_tokens=len(c.prompt_ids), completion_tokens=len(c))

    def send(self, requests: Sequence[Request], on_result=None) -> list[LLMResult]:
        """Results in order (one batched decode); ``on_result(i, result)`` for each after it."""
        results = self._send(requests)
        if on_result is not None:
            for i, r in enumerate(results):
                on_result(i, r)
        return results

    def _send(self, requests: Sequence[Request]) -> list[LLMResult]:
        results: list[LLMResult | None] = [None] * len(requests)
        rows, ids, samp = [], [], []
        for i, r in enumerate(requests):
            try:
                p, s = self._prepare(r)
            except _ContextLength as e:
                results[i] = error_result("context_length", str(e))
                continue
            except (ValueError, TypeError) as e:
                results[i] = error_result("bad_request", str(e))
                continue
            rows.append(i)
            ids.append(p)
            samp.append(s)
        if rows:
            try:
                outs = self.engine.generate_ids(ids, samp)
                for i, c in zip(rows, outs):
                    results[i] = self._result(c)
            except Exception:  # noqa: BLE001 - isolate the failing row
                for i, p, s in zip(rows, ids, samp):
                    try:
                        results[i] = self._result(self.engine.generate_ids([p], [s])[0])
                    except Exception as e:  # noqa: BLE001
                        results[i] = error_result("engine", f"{type(e).__name__}: {e}")
        return results  # type: ignore[return-value]

    def close(self):
        pass


class _ContextLength(ValueError):
    pass
