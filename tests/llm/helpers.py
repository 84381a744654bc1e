"""Test-side servers for the LLM client and the synthesis jobs (real HTTP, uvicorn threads).

- ``tiny_engine()``: a random 1-layer EuroLLM-shaped model with the byte-level tokenizer
  (ChatML markers included), as an ``Engine``.
- ``serve(app)``: uvicorn on a free port in a background thread -> base_url.
- ``CountingApp``: wraps any ASGI app and counts the POST requests that reach it, per path
  and per body, and the bodies that got an answer (``answered``: the server-side count of the
  "a rerun sends nothing twice" tests) and the most in flight at once; it can refuse the first
  ``fail_first`` requests with 503, every request (``fail_all``), or those a ``hook(n)`` says
  (the kill test kills the job from there).
- ``scripted_app(respond)``: an OpenAI-compatible FastAPI app whose answers come from a
  Python function ``respond(mode, payload, body) -> str`` (content the pipelines can parse;
  a random tiny model only writes gibberish), with OpenAI-shaped responses and usage.
"""


import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter


def tiny_engine(seed: int = 0, max_seq_len: int = 4096):
    from eurollm_jax import create_model, get_preset
    from eurollm_jax.inference import Engine
    from eurollm_jax.tokenizer import ByteTokenizer

    cfg = get_preset("tiny", vocab_size=261,  # = ByteTokenizer().vocab_size: no undecodable ids
                     d_model=32, num_layers=1, num_heads=2,
                     num_kv_heads=1, head_dim=16, ffn_dim=64, compute_dtype="float32",
                     max_seq_len=max_seq_len)
    return Engine(create_model(cfg, seed=seed), ByteTokenizer())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app):
    """Run ``app`` with uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class CountingApp:
    """ASGI wrapper: counts POSTs (``calls`` per path, ``bodies`` per canonical body) and
    tracks the most requests in flight at once (``max_in_flight``)."""

    def __init__(self, app, *, fail_first: int = 0, fail_all: bool = False, hook=None):
        self.app = app
        self.calls: Counter = Counter()
        self.bodies: Counter = Counter()
        self.answered: Counter = Counter()  # bodies that got a 200 answer
        self.fail_first, self.fail_all = fail_first, fail_all
        self.hook = hook  # hook(n) for the n-th POST (1-based); True: refuse it with 503
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self):
        with self._lock:
            self.calls.clear()
            self.bodies.clear()
            self.answered.clear()
            self.max_in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        with self._lock:
            self.calls[scope["path"]] += 1
            try:
                canon = json.dumps(json.loads(body), sort_keys=True)
            except ValueError:
                canon = body.decode("utf-8", "replace")
            self.bodies[canon] += 1
            refuse = self.fail_all or self.fail_first > 0
            if self.hook is not None and self.hook(self.total):
                refuse = True
            if self.fail_first > 0:
                self.fail_first -= 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if refuse:
                payload = b'{"error": {"message": "overloaded", "type": "server_error"}}'
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(payload)).encode())]})
                await send({"type": "http.response.body", "body": payload})
                return
            sent = False

            async def replay():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            status = {}

            async def send_status(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            await self.app(scope, replay, send_status)
            if status.get("code") == 200:
                with self._lock:
                    self.answered[canon] += 1
        finally:
            with self._lock:
                self.in_flight -= 1


def scripted_app(respond, *, delay_s: float = 0.0, model_name: str = "scripted"):
    """An OpenAI-compatible app answering with ``respond(mode, payload, body)``; a ``None``
    answer gives HTTP 400, an exception HTTP 500 (both OpenAI error bodies)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    def usage(prompt: str, text: str) -> dict:
        p, c = len(prompt.split()), len(text.split())
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    async def answer(mode: str, payload, body: dict):
        if delay_s:
            await asyncio.sleep(delay_s)
        try:
            text = respond(mode, payload, body)
        except Exception as e:  # noqa: BLE001
            return None, JSONResponse({"error": {"message": str(e), "type": "server_error"}},
                                      status_code=500)
        if text is None:
            return None, JSONResponse({"error": {"message": "refused", "type":
                                                 "invalid_request_error"}}, status_code=400)
        return text, None

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        text, err = await answer("chat", body["messages"], body)
        if err is not None:
            return err
        prompt = " ".join(m["content"] for m in body["messages"])
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                "model": body.get("model", model_name),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": usage(prompt, text)}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await request.json()
        text, err = await answer("completion", body["prompt"], body)
        if err is not None:
            return err
        return {"id": "cmpl-1", "object": "text_completion", "created": 0,
                "model": body.get("model", model_name),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop",
                             "logprobs": None}],
                "usage": usage(body["prompt"], text)}

    return app
