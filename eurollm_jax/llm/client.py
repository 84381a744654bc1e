"""``LLMClient``: chat and completion requests in, ``LLMResult`` out, one interface for every
transport, with the persistent response cache and usage accounting.

Per call: requests are keyed (``cache.request_key``); finished answers come from the cache
(``cached=True``); identical requests inside a call are sent once; the rest go to the
backend in one batch (HTTP: ``concurrency`` in flight; engine: one batched decode); each
finished answer is written to the cache as soon as it arrives (HTTP) or its batch returns
(engine), so a killed job loses only the requests that were in flight. A failed request never
raises: its ``LLMResult.error`` is ``"kind: message"``, counted in ``usage["errors"]``, and
it is not cached, so a rerun tries it again.

Sampling with ``temperature > 0`` is cached like greedy decoding: a rerun gets the same
answer. Ask for several different samples of one prompt with different ``seed`` values.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

from eurollm_jax.llm.backends import (
    MODES,
    EngineBackend,
    LLMResult,
    OpenAIBackend,
    Request,
    error_result,
)
from eurollm_jax.llm.cache import ResponseCache, request_key


def _check_messages(conv: Any, index: int) -> list[dict]:
    if isinstance(conv, (str, bytes)) or not isinstance(conv, Sequence) or not conv:
        raise TypeError(f"conversation {index} must be a non-empty list of "
                        f"{{'role': ..., 'content': ...}} messages, got {type(conv).__name__}")
    out = []
    for j, m in enumerate(conv):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise TypeError(f"conversation {index}, message {j} must be a dict with 'role' and "
                            f"'content', got {m!r:.80}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class LLMClient:
    """One LLM behind one interface; build with ``from_endpoint`` or ``from_engine``."""

    def __init__(self, backend, *, cache_dir: str | None = None):
        self.backend = backend
        self.model = backend.model
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self._lock = threading.Lock()
        self._usage = {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0,
                       "errors": {}}

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_endpoint(cls, base_url: str, model: str, *, api_key: str | None = None,
                      concurrency: int = 8, timeout: float = 60.0, max_retries: int = 2,
                      cache_dir: str | None = None) -> "LLMClient":
        """An OpenAI-compatible server (``launch.serve``, vLLM, a hosted API) via ``openai``.

        ``base_url`` is the server root or its ``/v1``; ``model`` the name sent with each
        request (and part of every cache key); ``max_retries`` retries with backoff on
        connection errors, timeouts, 408/409/429 and 5xx."""
        return cls(OpenAIBackend(base_url, model, api_key=api_key, concurrency=concurrency,
                                 timeout=timeout, max_retries=max_retries), cache_dir=cache_dir)

    @classmethod
    def from_engine(cls, engine, *, model_name: str = "local",
                    cache_dir: str | None = None) -> "LLMClient":
        """The in-process ``eurollm_jax.inference.Engine`` (with a tokenizer); chat renders
        ChatML with the one chat template and stops on ``<|im_end|>``."""
        return cls(EngineBackend(engine, model_name), cache_dir=cache_dir)

    # ------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """``openai:<model>@<base_url>`` or ``engine:<model_name>``."""
        return self.backend.name

    @property
    def usage(self) -> dict:
        """{"requests" (sent), "cached" (answered without sending), "prompt_tokens",
        "completion_tokens" (of sent requests), "errors": {kind: n}} since the client was made."""
        with self._lock:
            return dict(self._usage, errors=dict(self._usage["errors"]))

    # ------------------------------------------------------------ requests
    def chat(self, conversations: Sequence[Sequence[Mapping[str, Any]]], *,
             temperature: float = 0.0, max_tokens: int = 256, top_p: float = 1.0,
             seed: int | None | Sequence[int | None] = None,
             stop: Sequence[str] | str | None = None) -> list[LLMResult]:
        """Assistant replies for conversations (lists of OpenAI-style messages), same order.
        ``seed`` may also be a list, one seed per conversation (sent in one batch)."""
        if isinstance(conversations, (str, bytes)) or not isinstance(conversations, Sequence):
            raise TypeError("conversations must be a list of message lists")
        payloads = [_check_messages(c, i) for i, c in enumerate(conversations)]
        return self._run("chat", payloads, temperature, max_tokens, top_p, seed, stop)

    def complete(self, prompts: Sequence[str], *, temperature: float = 0.0,
                 max_tokens: int = 256, top_p: float = 1.0,
                 seed: int | None | Sequence[int | None] = None,
                 stop: Sequence[str] | str | None = None) -> list[LLMResult]:
        """Plain-text continuations of prompts, same order (``seed``: as for ``chat``)."""
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
            raise TypeError("prompts must be a list of strings")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise TypeError(f"prompt {i} must be a string, got {type(p).__name__}")
        return self._run("completion", list(prompts), temperature, max_tokens, top_p, seed, stop)

    def _run(self, mode, payloads, temperature, max_tokens, top_p, seed, stop):
        assert mode in MODES
        if isinstance(stop, str):
            stop = (stop,)
        stop = tuple(s for s in (stop or ()) if s) or None
        if int(max_tokens) < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
        if isinstance(seed, (list, tuple)):
            if len(seed) != len(payloads):
                raise ValueError(f"{len(seed)} seeds for {len(payloads)} requests; give one "
                                 f"seed, or one per request")
            seeds = [None if s is None else int(s) for s in seed]
        else:
            seeds = [None if seed is None else int(seed)] * len(payloads)
        requests = [Request(mode, p, float(temperature), int(max_tokens), float(top_p), s, stop)
                    for p, s in zip(payloads, seeds)]
        keys = [request_key(self.model, mode, r.payload, r.params()) for r in requests]
        results: list[LLMResult | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        hits = 0
        for i, key in enumerate(keys):
            entry = self.cache.get(key) if self.cache is not None else None
            if entry is not None:
                results[i] = LLMResult(text=entry["text"], finish_reason=entry.get("finish_reason"),
                                       prompt_tokens=int(entry.get("prompt_tokens", 0)),
                                       completion_tokens=int(entry.get("completion_tokens", 0)),
                                       cached=True)
                hits += 1
            elif key in pending:
                pending[key].append(i)
                hits += 1  # the same request twice in one call is sent once
            else:
                pending[key] = [i]
        order = list(pending)

        def store(k: int, res: LLMResult) -> None:
            # each finished answer is on disk before the next request of the call starts
            # (HTTP, concurrency 1) or as soon as the batch returns (engine): a kill loses
            # only the requests in flight
            if res.ok and self.cache is not None:
                self.cache.put(order[k], {"model": self.model, "text": res.text,
                                          "finish_reason": res.finish_reason,
                                          "prompt_tokens": res.prompt_tokens,
                                          "completion_tokens": res.completion_tokens})

        sent = (self.backend.send([requests[pending[k][0]] for k in order], on_result=store)
                if order else [])
        if len(sent) != len(order):  # a backend bug, not a bad request
            sent = [error_result("client", f"backend returned {len(sent)} results for "
                                           f"{len(order)} requests")] * len(order)
        usage_add = {"requests": len(order), "cached": hits, "prompt_tokens": 0,
                     "completion_tokens": 0}
        errors: dict[str, int] = {}
        for key, res in zip(order, sent):
            if res.ok:
                usage_add["prompt_tokens"] += res.prompt_tokens
                usage_add["completion_tokens"] += res.completion_tokens
            else:
                errors[res.error_kind] = errors.get(res.error_kind, 0) + 1
            first, *dups = pending[key]
            results[first] = res
            for j in dups:
                results[j] = LLMResult(text=res.text, finish_reason=res.finish_reason,
                                       error=res.error, prompt_tokens=res.prompt_tokens,
                                       completion_tokens=res.completion_tokens, cached=res.ok)
        if self.cache is not None and order:
            self.cache.sync()
        with self._lock:
            for k, v in usage_add.items():
                self._usage[k] += v
            for k, v in errors.items():
                self._usage["errors"][k] = self._usage["errors"].get(k, 0) + v
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        self.backend.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
