"""The one LLM client (layer ``llm``): every stage that talks to an LLM (EuroFilter annotation,
synthesis, LLM judges in evaluations, translation in RAG) goes through ``LLMClient``.

    from eurollm_jax.llm import LLMClient, LLMResult
    client = LLMClient.from_endpoint(base_url, model, *, api_key=None, concurrency=8,
                                     timeout=60.0, max_retries=2, cache_dir=None)  # `openai`
    client = LLMClient.from_engine(engine, *, model_name="local", cache_dir=None)  # in process
    results = client.chat(conversations, *, temperature=0.0, max_tokens=256, top_p=1.0,
                          seed=None, stop=None)         # conversations: list of message lists
    results = client.complete(prompts, *, ...same...)  # prompts: list of str
    # -> list[LLMResult], same order; one failed request never raises: LLMResult.error is set
    client.usage  # {"requests", "cached", "prompt_tokens", "completion_tokens",
                  #  "errors": {kind: n}}

``seed`` may also be a list with one seed per request (added to the interface: requests with
different seeds still go out in one batch). ``LLMResult``: ``text`` (None on error), ``finish_reason``, ``error`` (None or
"kind: message"; kinds in ``backends``), ``prompt_tokens``, ``completion_tokens``, ``cached``;
``ok`` and ``error_kind`` for convenience. With ``cache_dir`` the cache is persistent and keyed
by (model, messages or prompt, sampling parameters, seed): a rerun sends no finished request
again (``cache.ResponseCache``). Modules: ``client`` (the interface, cache and usage),
``backends`` (the ``openai`` HTTP transport, the engine transport), ``cache``.
The HTTP backend needs the ``openai`` package: ``pip install 'eurollm_jax[llm]'``.
"""

from eurollm_jax.llm.backends import LLMResult, Request
from eurollm_jax.llm.cache import ResponseCache, request_key
from eurollm_jax.llm.client import LLMClient

__all__ = ["LLMClient", "LLMResult", "Request", "ResponseCache", "request_key"]
