"""An OpenAI-compatible HTTP server (FastAPI + uvicorn) over the inference engine.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``,
``GET /health``. Request and response bodies follow the OpenAI schema (non-streaming);
vLLM's extensions ``top_k``, ``stop_token_ids`` and ``ignore_eos`` are accepted too.

Concurrent requests are batched: handlers put their rows (one per prompt x ``n``) on a
queue; one ``Batcher`` thread takes everything that arrives within ``batch_wait_s`` (up
to ``max_batch_size`` rows) and runs it as ONE ``Engine.generate_ids`` call, each row with
its own sampling settings, then hands every request its rows back.

Safety: binds 127.0.0.1 by default (``launch.serve``); bodies over ``max_body_bytes`` get
413; malformed JSON, schema violations, unknown models, prompts too long for the
context, and unsupported options get a JSON ``{"error": {...}}`` with a 4xx code; a full
queue gets 503; the server keeps serving after any of them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import secrets
import threading
import time
import uuid
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from eurollm_jax.inference import chat as chat_lib
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
                503, "the server is overloaded; retry later", type_="server_error"
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
    model_name: str = "eurollm"
    max_batch_size: int = 32
    batch_wait_s: float = 0.01
    max_queue: int = 1024
    max_body_bytes: int = 1 << 20
    max_tokens_limit: int = 2048  # cap on max_tokens per request
    max_prompts: int = 64  # prompts per /v1/completions request
    strict_model_name: bool = True


def create_app(engine: Engine, config: ServerConfig | None = None):
    """The FastAPI application serving ``engine`` (which must have a tokenizer)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    config = config or ServerConfig()
    if engine.tokenizer is None:
        raise ValueError("the server needs a tokenizer: Engine(model, tokenizer)")
    tokenizer = engine.tokenizer
    batcher = Batcher(
        engine,
        max_batch_size=config.max_batch_size,
        batch_wait_s=config.batch_wait_s,
        max_queue=config.max_queue,
    )
    max_len = engine.cfg.max_seq_len
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        batcher.close()

    app = FastAPI(title="eurollm_jax OpenAI-compatible server", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.engine = engine
    app.state.config = config
    if config.max_body_bytes:
        app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)

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
                f"model {req.model!r} does not exist; this server serves " f"{config.model_name!r}",
                param="model",
                code="model_not_found",
            )
        if req.stream:
            raise APIError(400, "stream=true is not supported; send stream=false", param="stream")
        if req.presence_penalty or req.frequency_penalty or req.logit_bias:
            raise APIError(
                400,
                "presence_penalty, frequency_penalty and logit_bias are not supported",
                param="presence_penalty",
            )
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stops) > 16:
            raise APIError(400, "at most 16 stop strings", param="stop")
        for t in req.stop_token_ids or []:
            if not 0 <= t < engine.cfg.vocab_size:
                raise APIError(
                    400, f"stop_token_ids: {t} is outside the vocabulary", param="stop_token_ids"
                )
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
                f"the prompt has {prompt_len} tokens; this model's context is {max_len} " f"tokens",
                param="messages",
                code="context_length_exceeded",
            )
        if max_tokens is None:
            max_tokens = min(default_max, room, config.max_tokens_limit)
        if max_tokens > config.max_tokens_limit:
            raise APIError(
                400,
                f"max_tokens {max_tokens} exceeds this server's limit "
                f"{config.max_tokens_limit}",
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

    async def run(prompts, sampling, top_logprobs) -> list[Completion]:
        future = batcher.submit(prompts, sampling, top_logprobs)
        return await asyncio.wrap_future(future)

    def token_str(t: int) -> str:
        return tokenizer.decode([int(t)])

    def response(id_prefix: str, kind: str, choices: list, prompt_tokens: int, outs) -> dict:
        completion = sum(
            len(o) + (1 if o.finish_reason == "stop" and isinstance(o.stop, int) else 0)
            for o in outs
        )
        return {
            "id": f"{id_prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": config.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
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

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        stops = check_common(req)
        if req.echo:
            raise APIError(400, "echo=true is not supported", param="echo")
        if req.suffix:
            raise APIError(400, "suffix is not supported", param="suffix")
        if req.best_of not in (None, req.n):
            raise APIError(400, "best_of is not supported (leave it unset)", param="best_of")
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
        rows, samp = [], []
        for ids in ids_list:
            s = sampling_for(req, len(ids), req.max_tokens, 16, stops)
            rows += [ids] * req.n
            samp += s
        outs = await run(rows, samp, req.logprobs or 0)
        choices = []
        for i, o in enumerate(outs):
            choice = {
                "index": i,
                "text": o.text,
                "logprobs": None,
                "finish_reason": o.finish_reason,
            }
            if req.logprobs is not None:
                toks = [token_str(t) for t in o]
                offsets, pos = [], 0
                for t in toks:
                    offsets.append(pos)
                    pos += len(t)
                top = None
                if req.logprobs > 0 and o.top_logprobs is not None:
                    top = [
                        {
                            token_str(t): lp
                            for t, lp in zip(ids[: req.logprobs], lps[: req.logprobs])
                        }
                        for ids, lps in o.top_logprobs
                    ]
                choice["logprobs"] = {
                    "tokens": toks,
                    "token_logprobs": o.logprobs,
                    "top_logprobs": top,
                    "text_offset": offsets,
                }
            choices.append(choice)
        prompt_tokens = sum(len(x) for x in ids_list) * req.n
        return response("cmpl", "text_completion", choices, prompt_tokens, outs)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest):
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
            req,
            len(ids),
            max_tokens,
            config.max_tokens_limit,
            stops,
            extra_stop_ids=chat_lib.chat_stop_ids(tokenizer),
        )
        n_top = (req.top_logprobs or 0) if req.logprobs else 0
        outs = await run([ids] * req.n, samp, n_top)
        choices = []
        for i, o in enumerate(outs):
            lp = None
            if req.logprobs:
                content = []
                for j, (t, l) in enumerate(zip(o, o.logprobs)):
                    s = token_str(t)
                    entry = {
                        "token": s,
                        "logprob": l,
                        "bytes": list(s.encode("utf-8")),
                        "top_logprobs": [],
                    }
                    if n_top and o.top_logprobs is not None:
                        tids, tlps = o.top_logprobs[j]
                        entry["top_logprobs"] = [
                            {
                                "token": token_str(a),
                                "logprob": b,
                                "bytes": list(token_str(a).encode("utf-8")),
                            }
                            for a, b in zip(tids[:n_top], tlps[:n_top])
                        ]
                    content.append(entry)
                lp = {"content": content}
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": o.text},
                    "logprobs": lp,
                    "finish_reason": o.finish_reason,
                }
            )
        return response("chatcmpl", "chat.completion", choices, len(ids) * req.n, outs)

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
