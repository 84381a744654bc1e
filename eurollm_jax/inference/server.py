"""An OpenAI-compatible HTTP server (FastAPI + uvicorn) over the inference engine.

Endpoints: ``POST /v1/completions`` and ``POST /v1/chat/completions`` (OpenAI bodies, with
``stream`` as server-sent events, ``n``, ``logprobs``/``top_logprobs``, ``echo`` with prompt
log-probabilities, presence/frequency penalties, ``seed``, ``stop``, ``max_tokens``; vLLM's
``top_k``, ``stop_token_ids`` and ``ignore_eos``), ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (queue length, running slots, tokens/s, counters) and vLLM's
``/tokenize``, ``/detokenize``, ``/tokenizer_info`` (lm-eval's remote tokenizer).

Requests run on continuous batching (``continuous.Scheduler``: every row of a request, one
per prompt x ``n``, is a sequence in a decode slot; tokens stream back as they are made).
``ServerConfig.batching="static"`` keeps the older ``Batcher``: one thread takes what
arrives within ``batch_wait_s`` and runs it as one ``Engine.generate_ids`` call.

Safety: binds 127.0.0.1 by default (``launch.serve``); an optional API key
(``ServerConfig.api_key``) guards ``/v1/*``; bodies over ``max_body_bytes`` get 413;
malformed JSON, schema violations, unknown models, prompts too long for the context and
unsupported options get a JSON ``{"error": {...}}`` with a 4xx code; a full queue gets
429; a client that disconnects has its rows cancelled (their slots are freed); the server
keeps serving after any of them. ``running_server(engine, config)`` serves on a free port
in a background thread for tests and in-process clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import queue
import secrets
import threading
import time
import uuid
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

try:  # the "serve" extra; handlers name it in annotations FastAPI resolves at start-up
    from starlette.requests import Request as HTTPRequest
except ImportError:  # pragma: no cover - create_app then asks for the extra
    HTTPRequest = None

from eurollm_jax.inference import chat as chat_lib
from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.inference.engine import Completion, Engine, SamplingParams

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- errors
class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


# ----------------------------------------------------------------------------- schema
class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields we can ignore

    model: str | None = None
    temperature: float = Field(1.0, ge=0.0, le=100.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)
    n: int = Field(1, ge=1)
    stop: Union[str, list[str], None] = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    seed: int | None = None
    stream: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    stream_options: dict[str, Any] | None = None


class CompletionRequest(_Request):
    prompt: Union[str, list[str], list[int], list[list[int]]]
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    best_of: int | None = None
    suffix: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Union[str, list[dict[str, Any]], None] = None


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


# ----------------------------------------------------------------------------- batching
@dataclasses.dataclass
class _Job:
    prompts: list[list[int]]
    sampling: list[SamplingParams]
    top_logprobs: int
    future: concurrent.futures.Future


class Batcher:
    """One thread that turns queued requests into batched ``generate_ids`` calls."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch_size: int = 32,
        batch_wait_s: float = 0.01,
        max_queue: int = 1024,
    ):
        self.engine = engine
        self.max_batch_size = int(max_batch_size)
        self.batch_wait_s = float(batch_wait_s)
        self.queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self.stats = {"batches": 0, "rows": 0, "max_rows": 0, "requests": 0}
        self._pending: _Job | None = None
        self._thread = threading.Thread(target=self._loop, name="eurollm-batcher", daemon=True)
        self._stopped = threading.Event()
        self._thread.start()

    def submit(self, prompts, sampling, top_logprobs: int = 0) -> concurrent.futures.Future:
        if len(prompts) > self.max_batch_size:
            raise APIError(
                400,
                f"a request may ask for at most {self.max_batch_size} sequences "
                f"(prompts x n), got {len(prompts)}",
                param="n",
            )
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self.queue.put_nowait(_Job(prompts, sampling, top_logprobs, future))
        except queue.Full:
            raise APIError(
                429, "the server is busy (queue full); retry later", type_="rate_limit_error",
                code="queue_full",
            ) from None
        return future

    def close(self):
        self._stopped.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=30)

    def _collect(self) -> list[_Job]:
        first = self._pending or self.queue.get()
        self._pending = None
        if first is None:
            return []
        jobs, rows = [first], len(first.prompts)
        deadline = time.monotonic() + self.batch_wait_s
        while rows < self.max_batch_size:
            timeout = deadline - time.monotonic()
            try:
                job = (
                    self.queue.get(timeout=max(timeout, 0))
                    if timeout > 0
                    else self.queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is None:
                self._stopped.set()
                break
            if rows + len(job.prompts) > self.max_batch_size:
                self._pending = job
                break
            jobs.append(job)
            rows += len(job.prompts)
        return jobs

    def _loop(self):
        while not self._stopped.is_set():
            jobs = self._collect()
            if not jobs:
                continue
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            prompts = [p for j in jobs for p in j.prompts]
            sampling = [s for j in jobs for s in j.sampling]
            try:
                outs = self.engine.generate_ids(
                    prompts, sampling, top_logprobs=max(j.top_logprobs for j in jobs)
                )
            except Exception as e:  # noqa: BLE001 - reported to every waiting request
                logger.exception("batched generation failed")
                for j in jobs:
                    j.future.set_exception(e)
                continue
            self.stats["batches"] += 1
            self.stats["rows"] += len(prompts)
            self.stats["requests"] += len(jobs)
            self.stats["max_rows"] = max(self.stats["max_rows"], len(prompts))
            start = 0
            for j in jobs:
                j.future.set_result(outs[start : start + len(j.prompts)])
                start += len(j.prompts)


# ----------------------------------------------------------------------------- body limit
class BodySizeLimit:
    """ASGI middleware: reject request bodies larger than ``max_bytes`` with a JSON 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._reject(send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send):
        import json

        payload = json.dumps(
            APIError(
                413,
                f"request body exceeds the limit of {self.max_bytes} bytes",
                code="request_too_large",
            ).body()
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


# ----------------------------------------------------------------------------- app
@dataclasses.dataclass
class ServerConfig:
    """Server settings. ``batching="continuous"`` (default) serves from a ``Scheduler`` of
    ``max_batch_size`` decode slots; ``"static"`` is the older ``Batcher`` (requests that
    arrive within ``batch_wait_s`` run together to their longest member), kept for
    comparison (``launch.bench serve``)."""

    model_name: str = "eurollm"
    max_batch_size: int = 32  # decode slots (continuous) / rows per batch (static)
    batch_wait_s: float = 0.01  # static batching only
    max_queue: int = 1024  # waiting sequences before 429
    max_body_bytes: int = 1 << 20
    max_tokens_limit: int = 2048  # cap on max_tokens per request
    max_prompts: int = 64  # prompts per /v1/completions request
    strict_model_name: bool = True
    batching: str = "continuous"
    decode_steps: int = 4  # decode steps per dispatch (continuous)
    prefill_chunk: int = 512
    max_prefill_rows: int = 8
    cache_len: int | None = None
    prefix_cache_tokens: int = 0  # 0 = no prefix cache
    prefix_block: int = 64
    api_key: str | None = None  # when set, /v1/* needs "Authorization: Bearer <api_key>"
    warmup: bool = False  # compile the scheduler's shapes before serving (slow start, no stalls)


class _Runner:
    """Runs rows (prompt ids, sampling, top_logprobs, penalties) and reports, per row,
    ("tokens", items) events and a final ("done", Completion) or ("error", exc), on the
    event loop of the calling handler."""

    def __init__(self, engine: Engine, config: ServerConfig):
        self.config = config
        self.scheduler = None
        self.batcher = None
        if config.batching == "continuous":
            from eurollm_jax.inference.continuous import Scheduler

            self.scheduler = Scheduler(
                engine,
                num_slots=config.max_batch_size,
                cache_len=config.cache_len,
                prefill_chunk=config.prefill_chunk,
                max_prefill_rows=config.max_prefill_rows,
                decode_steps=config.decode_steps,
                max_queue=config.max_queue,
                prefix_cache_tokens=config.prefix_cache_tokens,
                prefix_block=config.prefix_block,
            )
            if config.warmup:
                self.scheduler.warmup()
        elif config.batching == "static":
            self.batcher = Batcher(
                engine,
                max_batch_size=config.max_batch_size,
                batch_wait_s=config.batch_wait_s,
                max_queue=config.max_queue,
            )
        else:
            raise ValueError(
                f"ServerConfig.batching must be 'continuous' or 'static', got {config.batching!r}"
            )

    def start(self, rows, top_logprobs: int, penalties: tuple[float, float]):
        """Submit ``rows`` [(prompt ids, SamplingParams)]; returns (asyncio queue of
        (row index, kind, payload), cancel function)."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        if self.batcher is not None:
            if penalties != (0.0, 0.0):
                raise APIError(
                    400,
                    "presence/frequency penalties need continuous batching",
                    param="presence_penalty",
                )
            future = self.batcher.submit([r[0] for r in rows], [r[1] for r in rows], top_logprobs)

            def deliver(f):
                try:
                    outs = f.result()
                except BaseException as e:  # noqa: BLE001 - reported to the handler
                    for i in range(len(rows)):
                        loop.call_soon_threadsafe(events.put_nowait, (i, "error", e))
                    return
                for i, o in enumerate(outs):
                    loop.call_soon_threadsafe(events.put_nowait, (i, "done", o))

            future.add_done_callback(deliver)
            return events, lambda: future.cancel()

        from eurollm_jax.inference.continuous import QueueFull, Request

        if len(rows) > self.scheduler.num_slots * 4 and len(rows) > self.config.max_queue:
            raise APIError(400, f"too many sequences in one request ({len(rows)})", param="n")
        reqs = []
        for i, (ids, samp) in enumerate(rows):

            def on_event(kind, payload, i=i):
                loop.call_soon_threadsafe(events.put_nowait, (i, kind, payload))

            reqs.append(
                Request(
                    ids,
                    samp,
                    top_logprobs=top_logprobs,
                    presence_penalty=penalties[0],
                    frequency_penalty=penalties[1],
                    on_event=on_event,
                )
            )

        def cancel():
            for r in reqs:
                r.cancel()

        try:
            for r in reqs:
                self.scheduler.submit(r)
        except QueueFull as e:
            cancel()
            raise APIError(
                429,
                f"the server is busy ({e}); retry later",
                type_="rate_limit_error",
                code="queue_full",
            ) from None
        except ValueError as e:
            cancel()
            raise APIError(400, str(e), param="prompt") from None
        return events, cancel

    def metrics(self) -> dict:
        if self.scheduler is not None:
            return self.scheduler.metrics()
        out = dict(self.batcher.stats)
        out.update(queue_length=self.batcher.queue.qsize(), running_slots=None)
        return out

    def close(self):
        if self.scheduler is not None:
            self.scheduler.close()
        if self.batcher is not None:
            self.batcher.close()


def _sse(payload) -> bytes:
    return f"data: {json.dumps(payload) if not isinstance(payload, str) else payload}\n\n".encode()


class _TextStream:
    """Text deltas of one generated row, holding back what could still become part of a
    stop string (or an incomplete character) until it is certain."""

    def __init__(self, tokenizer, prompt, stops):
        self.tokenizer, self.prompt, self.stops = tokenizer, prompt, list(stops)
        self.hold = max([len(s) for s in stops] + [1]) - 1
        self.tokens: list[int] = []
        self.sent = ""

    def add(self, ids) -> str:
        self.tokens += ids
        text = tok_lib.decode_continuation(self.tokenizer, self.prompt, self.tokens)
        safe = len(text) - self.hold
        found = tok_lib.find_stop_string(text, self.stops) if self.stops else None
        if found:  # tokens of one dispatch may run past a stop string: never send them
            safe = min(safe, found[0])
        while safe > 0 and text[safe - 1] == "\ufffd":
            safe -= 1
        return self._take(text[: max(safe, 0)])

    def finish(self, final_text: str) -> str:
        return self._take(final_text)

    def _take(self, text: str) -> str:
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        delta = text[len(self.sent) :]
        self.sent = text
        return delta


def create_app(engine: Engine, config: ServerConfig | None = None):
    """The FastAPI application serving ``engine`` (which must have a tokenizer)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from eurollm_jax.inference.prompt_logprobs import prompt_logprobs

    config = config or ServerConfig()
    if engine.tokenizer is None:
        raise ValueError("the server needs a tokenizer: Engine(model, tokenizer)")
    tokenizer = engine.tokenizer
    runner = _Runner(engine, config)
    max_len = engine.cfg.max_seq_len
    created = int(time.time())
    specials = dict(chat_lib.special_token_ids(tokenizer))
    for tid in (tok_lib.bos_id(tokenizer), tok_lib.eos_id(tokenizer)):
        if tid is not None:
            specials.setdefault(tokenizer.id_to_piece(int(tid)), int(tid))

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        runner.close()

    app = FastAPI(title="eurollm_jax OpenAI-compatible server", lifespan=lifespan)
    app.state.runner = runner
    app.state.batcher = runner.batcher
    app.state.scheduler = runner.scheduler
    app.state.engine = engine
    app.state.config = config
    if config.max_body_bytes:
        app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)

    def check_auth(http: HTTPRequest):
        # a plain check, not an HTTP middleware: BaseHTTPMiddleware hides client
        # disconnects from the handlers, which need them to free slots
        if config.api_key:
            header = http.headers.get("authorization", "")
            if not secrets.compare_digest(header, f"Bearer {config.api_key}"):
                raise APIError(
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer <key>'",
                    code="invalid_api_key",
                )

    @app.exception_handler(APIError)
    async def _api_error(_, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body') or 'body'}: {e.get('msg')}"
            for e in errors[:5]
        )
        return JSONResponse(
            APIError(400, f"invalid request: {message}", param=loc or None).body(), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_, exc: StarletteHTTPException):
        return JSONResponse(
            APIError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code
        )

    @app.exception_handler(Exception)
    async def _internal_error(_, exc: Exception):
        logger.exception("internal error")
        return JSONResponse(
            APIError(
                500, f"internal error: {type(exc).__name__}: {exc}", type_="server_error"
            ).body(),
            status_code=500,
        )

    def check_common(req: _Request):
        if config.strict_model_name and req.model not in (None, "", config.model_name):
            raise APIError(
                404,
                f"model {req.model!r} does not exist; this server serves {config.model_name!r}",
                param="model",
                code="model_not_found",
            )
        if req.logit_bias:
            raise APIError(400, "logit_bias is not supported", param="logit_bias")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2.0 <= getattr(req, name) <= 2.0:
                raise APIError(400, f"{name} must be in [-2, 2]", param=name)
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stops) > 16:
            raise APIError(400, "at most 16 stop strings", param="stop")
        for t in req.stop_token_ids or []:
            if not 0 <= t < engine.cfg.vocab_size:
                raise APIError(
                    400, f"stop_token_ids: {t} is outside the vocabulary", param="stop_token_ids"
                )
        if len(req.stop_token_ids or []) > 6:
            raise APIError(400, "at most 6 stop_token_ids", param="stop_token_ids")
        return stops

    def sampling_for(
        req: _Request,
        prompt_len: int,
        max_tokens: int | None,
        default_max: int,
        stops,
        extra_stop_ids=(),
    ) -> list[SamplingParams]:
        room = max_len - prompt_len
        if room <= 0:
            raise APIError(
                400,
                f"the prompt has {prompt_len} tokens; this model's context is {max_len} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        if max_tokens is None:
            max_tokens = min(default_max, room, config.max_tokens_limit)
        if max_tokens > config.max_tokens_limit:
            raise APIError(
                400,
                f"max_tokens {max_tokens} exceeds this server's limit {config.max_tokens_limit}",
                param="max_tokens",
            )
        if prompt_len + max_tokens > max_len:
            raise APIError(
                400,
                f"this model's maximum context length is {max_len} tokens; the prompt "
                f"has {prompt_len} and max_tokens asks for {max_tokens}",
                param="max_tokens",
                code="context_length_exceeded",
            )
        seed = req.seed if req.seed is not None else secrets.randbits(31)
        return [
            SamplingParams(
                max_new_tokens=max_tokens,
                temperature=req.temperature,
                top_k=max(req.top_k, 0),
                top_p=req.top_p,
                seed=seed,
                stream=i,
                stop_token_ids=tuple(req.stop_token_ids or ()) + tuple(extra_stop_ids),
                stop_strings=tuple(stops),
                ignore_eos=req.ignore_eos,
            )
            for i in range(req.n)
        ]

    async def next_event(http: HTTPRequest, events, cancel, watch: dict):
        """The next row event; every 0.05 s, whether the client is still there (one that
        went away cancels its rows, which frees their slots)."""
        while True:
            now = time.monotonic()
            if now - watch.setdefault("checked", now) >= 0.05:
                watch["checked"] = now
                if await http.is_disconnected():
                    cancel()
                    raise APIError(499, "the client closed the request")
            try:
                return await asyncio.wait_for(events.get(), timeout=0.05)
            except asyncio.TimeoutError:
                continue

    async def collect(http: HTTPRequest, events, cancel, n_rows: int) -> list[Completion]:
        """Wait for every row's Completion; a client that goes away cancels its rows."""
        outs: list[Completion | None] = [None] * n_rows
        left = n_rows
        watch: dict = {}
        try:
            while left:
                i, kind, payload = await next_event(http, events, cancel, watch)
                if kind == "done":
                    outs[i] = payload
                    left -= 1
                elif kind == "error":
                    raise payload
        except BaseException:
            cancel()
            raise
        return outs

    def token_str(t: int) -> str:
        return tokenizer.decode([int(t)])

    def usage(prompt_tokens: int, outs) -> dict:
        completion = sum(
            len(o) + (1 if o.finish_reason == "stop" and isinstance(o.stop, int) else 0)
            for o in outs
        )
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }

    def response(id_: str, kind: str, choices: list, prompt_tokens: int, outs) -> dict:
        return {
            "id": id_,
            "object": kind,
            "created": int(time.time()),
            "model": config.model_name,
            "choices": choices,
            "usage": usage(prompt_tokens, outs),
        }

    def completion_logprobs(ids, lps, tops, n_top: int, offset0: int = 0) -> dict:
        toks = [token_str(t) for t in ids]
        offsets, pos = [], offset0
        for t in toks:
            offsets.append(pos)
            pos += len(t)
        top = None
        if n_top > 0:
            top = [
                None if tp is None else {token_str(a): b for a, b in zip(tp[0][:n_top], tp[1][:n_top])}
                for tp in tops
            ]
        return {"tokens": toks, "token_logprobs": lps, "top_logprobs": top, "text_offset": offsets}

    def chat_logprobs(ids, lps, tops, n_top: int) -> dict:
        content = []
        for j, (t, l) in enumerate(zip(ids, lps)):
            s = token_str(t)
            entry = {"token": s, "logprob": l, "bytes": list(s.encode("utf-8")), "top_logprobs": []}
            if n_top and tops is not None and tops[j] is not None:
                entry["top_logprobs"] = [
                    {"token": token_str(a), "logprob": b, "bytes": list(token_str(a).encode("utf-8"))}
                    for a, b in zip(tops[j][0][:n_top], tops[j][1][:n_top])
                ]
            content.append(entry)
        return {"content": content}

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics():
        return runner.metrics()

    @app.get("/tokenizer_info")
    async def tokenizer_info():
        bos, eos = tok_lib.bos_id(tokenizer), tok_lib.eos_id(tokenizer)
        return {
            "tokenizer_class": type(tokenizer).__name__,
            "bos_token": None if bos is None else tokenizer.id_to_piece(int(bos)),
            "eos_token": None if eos is None else tokenizer.id_to_piece(int(eos)),
            "pad_token": None,
            "model_max_length": max_len,
        }

    @app.post("/tokenize")
    async def tokenize(body: dict):
        text = body.get("prompt")
        if not isinstance(text, str):
            raise APIError(400, "tokenize needs a string 'prompt'", param="prompt")
        ids = tok_lib.encode_with_special_tokens(
            tokenizer, text, specials, add_bos=bool(body.get("add_special_tokens", True))
        )
        return {"tokens": ids, "count": len(ids), "max_model_len": max_len}

    @app.post("/detokenize")
    async def detokenize(body: dict):
        ids = body.get("tokens")
        if not isinstance(ids, list) or not all(isinstance(t, int) for t in ids):
            raise APIError(400, "detokenize needs 'tokens': a list of ints", param="tokens")
        try:
            ids = engine.encode(ids)
        except ValueError as e:
            raise APIError(400, str(e), param="tokens") from None
        return {"prompt": tokenizer.decode(ids)}

    @app.get("/v1/models")
    async def models(http: HTTPRequest):
        check_auth(http)
        return {
            "object": "list",
            "data": [
                {
                    "id": config.model_name,
                    "object": "model",
                    "created": created,
                    "owned_by": "eurollm_jax",
                    "max_model_len": max_len,
                }
            ],
        }

    def stream_response(gen):
        return StreamingResponse(
            gen, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    def include_usage(req) -> bool:
        opts = getattr(req, "stream_options", None) or {}
        return bool(isinstance(opts, dict) and opts.get("include_usage"))

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, http: HTTPRequest):
        check_auth(http)
        stops = check_common(req)
        if req.suffix:
            raise APIError(400, "suffix is not supported", param="suffix")
        if req.best_of not in (None, req.n):
            raise APIError(400, "best_of is not supported (leave it unset)", param="best_of")
        if req.echo and req.stream:
            raise APIError(400, "echo with stream=true is not supported", param="echo")
        p = req.prompt
        if isinstance(p, str):
            prompts = [p]
        elif p and all(isinstance(x, int) for x in p):
            prompts = [p]
        else:
            prompts = list(p)
        if not prompts:
            raise APIError(400, "prompt must not be empty", param="prompt")
        if len(prompts) > config.max_prompts:
            raise APIError(400, f"at most {config.max_prompts} prompts per request", param="prompt")
        ids_list = []
        for x in prompts:
            try:
                ids = engine.encode(x)
            except ValueError as e:  # token ids outside the vocabulary
                raise APIError(400, str(e), param="prompt") from None
            if not ids:
                raise APIError(400, "a token prompt must not be empty", param="prompt")
            ids_list.append(ids)
        rows, row_prompt = [], []
        for k, ids in enumerate(ids_list):
            for s in sampling_for(req, len(ids), req.max_tokens, 16, stops):
                rows.append((ids, s))
                row_prompt.append(k)
        n_top = req.logprobs or 0
        penalties = (req.presence_penalty, req.frequency_penalty)
        prompt_tokens = sum(len(x) for x in ids_list) * req.n
        echo_scores = None
        if req.echo and req.logprobs is not None:
            echo_scores = await asyncio.to_thread(prompt_logprobs, engine, ids_list, n_top)
        events, cancel = runner.start(rows, n_top, penalties)
        cid = f"cmpl-{uuid.uuid4().hex}"

        if req.stream:
            async def gen():
                streams = [_TextStream(tokenizer, ids, stops) for ids, _ in rows]
                outs, left = [None] * len(rows), len(rows)
                watch: dict = {}
                try:
                    while left:
                        i, kind, payload = await next_event(http, events, cancel, watch)
                        if kind == "error":
                            err = payload
                            body = (err if isinstance(err, APIError) else APIError(
                                500, f"{type(err).__name__}: {err}", type_="server_error")).body()
                            yield _sse(body)
                            break
                        choice = {"index": i, "text": "", "logprobs": None, "finish_reason": None}
                        if kind == "tokens":
                            choice["text"] = streams[i].add([t for t, _, _ in payload])
                            if req.logprobs is not None:
                                choice["logprobs"] = completion_logprobs(
                                    [t for t, _, _ in payload], [lp for _, lp, _ in payload],
                                    [tp for _, _, tp in payload], n_top,
                                )
                            if not choice["text"] and choice["logprobs"] is None:
                                continue
                        else:
                            outs[i] = payload
                            left -= 1
                            choice["text"] = streams[i].finish(payload.text or "")
                            choice["finish_reason"] = payload.finish_reason
                        yield _sse({"id": cid, "object": "text_completion", "created": int(time.time()),
                                    "model": config.model_name, "choices": [choice]})
                    if not left and include_usage(req):
                        yield _sse({"id": cid, "object": "text_completion", "created": int(time.time()),
                                    "model": config.model_name, "choices": [],
                                    "usage": usage(prompt_tokens, outs)})
                    yield _sse("[DONE]")
                finally:
                    if left:
                        cancel()

            return stream_response(gen())

        outs = await collect(http, events, cancel, len(rows))
        choices = []
        for i, o in enumerate(outs):
            ids = rows[i][0]
            text = o.text
            lp = None
            if req.echo:
                text = tokenizer.decode(ids) + text
            if req.logprobs is not None:
                if echo_scores is not None:
                    plps, ptops = echo_scores[row_prompt[i]]
                    all_ids = list(ids) + list(o)
                    all_lps = [None] + plps + o.logprobs
                    all_tops = [None] + (ptops or [None] * len(plps)) + (
                        o.top_logprobs or [None] * len(o))
                    lp = completion_logprobs(all_ids, all_lps, all_tops, n_top)
                else:
                    lp = completion_logprobs(list(o), o.logprobs, o.top_logprobs or [None] * len(o), n_top)
            choices.append({"index": i, "text": text, "logprobs": lp, "finish_reason": o.finish_reason})
        return response(cid, "text_completion", choices, prompt_tokens, outs)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, http: HTTPRequest):
        check_auth(http)
        stops = check_common(req)
        if req.top_logprobs and not req.logprobs:
            raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
        messages = []
        for m in req.messages:
            role = "system" if m.role == "developer" else m.role
            messages.append({"role": role, "content": m.content})
        try:
            ids = chat_lib.encode_chat(tokenizer, messages)
        except ValueError as e:
            raise APIError(400, str(e), param="messages") from None
        max_tokens = (
            req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        )
        samp = sampling_for(
            req, len(ids), max_tokens, config.max_tokens_limit, stops,
            extra_stop_ids=chat_lib.chat_stop_ids(tokenizer),
        )
        n_top = (req.top_logprobs or 0) if req.logprobs else 0
        rows = [(ids, s) for s in samp]
        prompt_tokens = len(ids) * req.n
        events, cancel = runner.start(rows, n_top, (req.presence_penalty, req.frequency_penalty))
        cid = f"chatcmpl-{uuid.uuid4().hex}"

        if req.stream:
            def chunk(choices, **extra):
                return _sse({"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": config.model_name, "choices": choices, **extra})

            async def gen():
                streams = [_TextStream(tokenizer, ids, stops) for _ in rows]
                outs, left = [None] * len(rows), len(rows)
                watch: dict = {}
                try:
                    for i in range(len(rows)):
                        yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                                      "logprobs": None, "finish_reason": None}])
                    while left:
                        i, kind, payload = await next_event(http, events, cancel, watch)
                        if kind == "error":
                            err = payload
                            yield _sse((err if isinstance(err, APIError) else APIError(
                                500, f"{type(err).__name__}: {err}", type_="server_error")).body())
                            break
                        if kind == "tokens":
                            delta = streams[i].add([t for t, _, _ in payload])
                            lp = None
                            if req.logprobs:
                                lp = chat_logprobs([t for t, _, _ in payload], [x for _, x, _ in payload],
                                                   [tp for _, _, tp in payload], n_top)
                            if delta or lp:
                                yield chunk([{"index": i, "delta": {"content": delta},
                                              "logprobs": lp, "finish_reason": None}])
                        else:
                            outs[i] = payload
                            left -= 1
                            rest = streams[i].finish(payload.text or "")
                            yield chunk([{"index": i, "delta": {"content": rest} if rest else {},
                                          "logprobs": None, "finish_reason": payload.finish_reason}])
                    if not left and include_usage(req):
                        yield chunk([], usage=usage(prompt_tokens, outs))
                    yield _sse("[DONE]")
                finally:
                    if left:
                        cancel()

            return stream_response(gen())

        outs = await collect(http, events, cancel, len(rows))
        choices = []
        for i, o in enumerate(outs):
            lp = chat_logprobs(list(o), o.logprobs, o.top_logprobs, n_top) if req.logprobs else None
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": o.text},
                    "logprobs": lp,
                    "finish_reason": o.finish_reason,
                }
            )
        return response(cid, "chat.completion", choices, prompt_tokens, outs)

    return app


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(
    engine: Engine,
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_level: str = "warning",
    startup_timeout_s: float = 60.0,
):
    """Serve ``engine`` over real HTTP for the duration of a ``with`` block.

    Starts uvicorn on ``create_app(engine, config)`` in a background thread on a free
    port of ``host`` (or on ``port``) and yields the base URL ``"http://127.0.0.1:PORT"``
    (OpenAI clients use ``base_url + "/v1"``). On exit the server stops accepting
    connections, runs its lifespan shutdown (the scheduler thread stops) and the thread
    is joined.
    """
    app = create_app(engine, config)
    with running_app(
        app, host=host, port=port, log_level=log_level, startup_timeout_s=startup_timeout_s
    ) as url:
        yield url


@contextlib.contextmanager
def running_app(
    app,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_level: str = "warning",
    startup_timeout_s: float = 60.0,
):
    """``running_server`` for an app already made by ``create_app`` (tests that look at
    ``app.state``)."""
    import uvicorn

    port = int(port) if port else _free_port(host)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on")
    )
    errors: list[BaseException] = []

    def run():
        try:
            server.run()
        except BaseException as e:  # noqa: BLE001 - reported in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=run, name=f"eurollm-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if errors or not thread.is_alive():
            thread.join(timeout=5)
            raise RuntimeError(
                f"the server on {host}:{port} did not start"
                + (f" ({type(errors[0]).__name__}: {errors[0]})" if errors else "")
                + "; is the port free?"
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=10)
            raise TimeoutError(
                f"the server on {host}:{port} did not start within {startup_timeout_s}s"
            )
        time.sleep(0.02)
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{url_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=10)


def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServerConfig | None = None,
    log_level: str = "info",
):
    """Run the server until interrupted (blocking)."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "binding %s: the server has no authentication; anyone who can reach this "
            "address can use it",
            host,
        )
    uvicorn.run(create_app(engine, config), host=host, port=port, log_level=log_level)
