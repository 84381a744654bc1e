"""The one LLM client: the official `openai` package against the real server (parity with a
raw `openai.OpenAI` call and with the in-process engine), the persistent cache counted on the
server side, concurrency limits, retries and error kinds that never raise."""

import json
import os

import pytest

from eurollm_jax.llm import LLMClient, LLMResult, ResponseCache, request_key
from tests.llm.helpers import CountingApp, scripted_app, serve

openai = pytest.importorskip("openai")

CONVS = [
    [{"role": "user", "content": "Good morning"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Translate: cat"}],
]
PROMPTS = ["The quick brown fox", "Numbers: one two", "Le renard brun"]


def test_request_key_depends_on_every_part():
    base = request_key("m", "chat", CONVS[0], {"temperature": 0.0, "seed": None})
    assert base == request_key("m", "chat", [dict(CONVS[0][0])], {"seed": None,
                                                                 "temperature": 0.0})
    others = [request_key("m2", "chat", CONVS[0], {"temperature": 0.0, "seed": None}),
              request_key("m", "completion", CONVS[0], {"temperature": 0.0, "seed": None}),
              request_key("m", "chat", CONVS[1], {"temperature": 0.0, "seed": None}),
              request_key("m", "chat", CONVS[0], {"temperature": 0.5, "seed": None}),
              request_key("m", "chat", CONVS[0], {"temperature": 0.0, "seed": 1})]
    assert len({base, *others}) == 6


def test_cache_persists_skips_torn_lines_and_refreshes(tmp_path):
    a = ResponseCache(str(tmp_path))
    a.put("k1", {"text": "one"})
    a.put("k2", {"text": "two"})
    a.close()
    part = [p for p in os.listdir(tmp_path) if p.startswith("part-")][0]
    with open(tmp_path / part, "a", encoding="utf-8") as f:
        f.write('{"key": "k3", "text": "tor')  # a kill mid-write
    b = ResponseCache(str(tmp_path))
    assert len(b) == 2 and b.get("k1")["text"] == "one" and b.get("k3") is None
    c = ResponseCache(str(tmp_path))  # a second writer in the same directory
    c.put("k4", {"text": "four"})
    assert b.get("k4") is None and b.refresh() == 3 and b.get("k4")["text"] == "four"
    b.close()
    c.close()


def test_engine_client_matches_engine_and_caches(engine, tmp_path):
    from eurollm_jax.inference import generate_chat

    client = LLMClient.from_engine(engine, model_name="tiny", cache_dir=str(tmp_path))
    res = client.chat(CONVS, max_tokens=8)
    want = generate_chat(engine, CONVS, max_new_tokens=8)
    assert [r.text for r in res] == [w.text for w in want]
    assert all(isinstance(r, LLMResult) and r.ok and not r.cached for r in res)
    assert [r.completion_tokens for r in res] == [len(w) for w in want]
    comp = client.complete(PROMPTS, max_tokens=8, stop=["e"])
    want = engine.generate(PROMPTS, max_new_tokens=8, stop_strings=["e"])
    assert [r.text for r in comp] == [w.text for w in want]
    # a row too long for the context fails alone, with a reason; the others still run
    long_prompt = "x" * engine.cfg.max_seq_len
    mixed = client.complete([PROMPTS[0], long_prompt], max_tokens=8, stop=["e"])
    assert mixed[0].cached and mixed[0].text == comp[0].text
    assert mixed[1].text is None and mixed[1].error_kind == "context_length"
    usage = client.usage
    assert usage["requests"] == 7 and usage["cached"] == 1  # so far
    assert usage["errors"] == {"context_length": 1}
    assert usage["completion_tokens"] == sum(r.completion_tokens for r in res + comp)
    client.close()
    # one seed per request, in one batch: each row's answer follows its own seed
    plain = LLMClient.from_engine(engine, model_name="tiny")  # no cache: both are computed
    seeded = plain.chat(CONVS, temperature=1.0, seed=[1, 2, 3], max_tokens=8)
    flipped = plain.chat(CONVS[::-1], temperature=1.0, seed=[3, 2, 1], max_tokens=8)
    assert [r.text for r in seeded] == [r.text for r in flipped[::-1]]
    assert plain.usage["requests"] == 6 and plain.usage["cached"] == 0
    with pytest.raises(ValueError, match="2 seeds for 3 requests"):
        plain.chat(CONVS, seed=[1, 2])
    # a fresh client on the same cache answers everything from disk
    rerun = LLMClient.from_engine(engine, model_name="tiny", cache_dir=str(tmp_path))
    assert [r.text for r in rerun.chat(CONVS, max_tokens=8)] == [r.text for r in res]
    assert rerun.usage["requests"] == 0 and rerun.usage["cached"] == 3


def test_http_client_equals_openai_package_and_engine(engine, served, tmp_path):
    url, counting = served
    raw = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0)
    client = LLMClient.from_endpoint(url, "tiny", concurrency=4, cache_dir=str(tmp_path))
    local = LLMClient.from_engine(engine, model_name="tiny")
    counting.reset()
    res = client.chat(CONVS, max_tokens=8)
    assert counting.calls == {"/v1/chat/completions": 3}
    for conv, r, e in zip(CONVS, res, local.chat(CONVS, max_tokens=8)):
        direct = raw.chat.completions.create(model="tiny", messages=conv, max_tokens=8,
                                             temperature=0.0)
        assert r.ok and r.text == direct.choices[0].message.content == e.text
        assert r.finish_reason == direct.choices[0].finish_reason
        assert (r.prompt_tokens, r.completion_tokens) == (direct.usage.prompt_tokens,
                                                          direct.usage.completion_tokens)
        assert r.completion_tokens == e.completion_tokens
    comp = client.complete(PROMPTS, max_tokens=8, temperature=0.8, seed=3, stop=["o"])
    # seeded sampling: a row's answer depends on its prompt and seed, not on its batch (the
    # server batches these differently from the engine call and the one-by-one raw calls)
    for p, r, e in zip(PROMPTS, comp, local.complete(PROMPTS, max_tokens=8, temperature=0.8,
                                                      seed=3, stop=["o"])):
        direct = raw.completions.create(model="tiny", prompt=p, max_tokens=8, temperature=0.8,
                                        seed=3, stop=["o"])
        assert r.text == direct.choices[0].text
        assert r.text == e.text  # the server runs row stream 0 of the request's seed too
    client.close()
    # a killed-and-rerun job: a new client on the same cache sends nothing (server count)
    counting.reset()
    rerun = LLMClient.from_endpoint(url, "tiny", cache_dir=str(tmp_path))
    again = rerun.chat(CONVS, max_tokens=8) + rerun.complete(PROMPTS, max_tokens=8,
                                                              temperature=0.8, seed=3,
                                                              stop=["o"])
    assert counting.total == 0 and all(r.cached for r in again)
    assert [r.text for r in again] == [r.text for r in res + comp]
    # one new request among cached ones: exactly one is sent; duplicates in a call go once
    more = rerun.chat(CONVS + [[{"role": "user", "content": "new"}]] * 2, max_tokens=8)
    assert counting.total == 1 and [r.cached for r in more] == [True] * 3 + [False, True]
    assert rerun.usage == {"requests": 1, "cached": 10, "errors": {},
                           "prompt_tokens": more[3].prompt_tokens,
                           "completion_tokens": more[3].completion_tokens}
    # the model name is part of the key; an unknown model is a 404 from this server
    bad = LLMClient.from_endpoint(url, "other", cache_dir=str(tmp_path), max_retries=0)
    out = bad.chat(CONVS[:1], max_tokens=8)
    assert out[0].error_kind == "not_found" and bad.usage["errors"] == {"not_found": 1}
    rerun.close()
    bad.close()


def _echo(mode, payload, body):
    text = payload[-1]["content"] if mode == "chat" else payload
    if text == "refuse":
        return None
    if text == "crash":
        raise RuntimeError("boom")
    return f"echo[{body.get('seed')}]: {text}"


def test_retries_errors_and_concurrency():
    counting = CountingApp(scripted_app(_echo, delay_s=0.15), fail_first=1)
    with serve(counting) as url:
        client = LLMClient.from_endpoint(url, "m", concurrency=4, max_retries=1)
        res = client.chat([[{"role": "user", "content": f"q{i}"}] for i in range(12)], seed=5)
        assert [r.text for r in res] == [f"echo[5]: q{i}" for i in range(12)]
        assert counting.total == 13  # the transient 503 was retried once
        # never more than `concurrency` at once, and really concurrent (12 requests of 0.15 s
        # each: one at a time would hold 1; how many overlap exactly is up to the scheduler)
        assert 2 <= counting.max_in_flight <= 4
        counting.reset()
        res = client.complete(["fine", "refuse", "crash"])
        assert res[0].text == "echo[None]: fine"
        assert res[1].text is None and res[1].error_kind == "bad_request"  # not retried
        assert res[2].error_kind == "server_error"  # retried, then given up
        assert counting.total == 1 + 1 + 2
        assert client.usage["errors"] == {"bad_request": 1, "server_error": 1}
        client.close()
        one = LLMClient.from_endpoint(url, "m", concurrency=1)
        counting.reset()
        one.complete(["a", "b", "c"])
        assert counting.max_in_flight == 1
        one.close()
    gone = LLMClient.from_endpoint(url, "m", max_retries=0, timeout=2)  # nothing listens now
    r = gone.complete(["a"])[0]
    assert r.text is None and r.error_kind == "connection"
    gone.close()


def test_bad_arguments_are_refused_clearly(engine):
    client = LLMClient.from_engine(engine)
    with pytest.raises(TypeError, match="list of message lists"):
        client.chat("hello")
    with pytest.raises(TypeError, match="conversation 0"):
        client.chat(["hello"])
    with pytest.raises(TypeError, match="prompt 1 must be a string"):
        client.complete(["a", 3])
    with pytest.raises(ValueError, match="base_url"):
        LLMClient.from_endpoint("127.0.0.1:8000", "m")
    assert client.chat([]) == [] and client.usage["requests"] == 0
    bad = client.chat([[{"role": "robot", "content": "x"}]])
    assert bad[0].error_kind == "bad_request"
    assert json.dumps(client.usage)  # plain, JSON-serialisable counters
