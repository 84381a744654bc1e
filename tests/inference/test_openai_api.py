"""The server through the official ``openai`` client and raw HTTP: streaming, n, logprobs,
echo, penalties, the metrics endpoint, a disconnecting client, 429, the API key, and a
bounded localhost load test."""

import concurrent.futures
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from eurollm_jax.inference import generate_chat  # noqa: E402
from eurollm_jax.inference.server import ServerConfig, create_app, running_app  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def served(engine):
    config = ServerConfig(
        model_name="tiny", max_batch_size=8, max_tokens_limit=200, max_queue=200,
        api_key="sekrit", prefill_chunk=64,
    )
    app = create_app(engine, config)
    with running_app(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="sekrit", max_retries=0, timeout=120)
        yield url, client, app


def test_completions_plain_stream_n_logprobs(served, engine):
    url, client, _ = served
    want = engine.generate(["The quick brown fox"], max_new_tokens=10)[0]
    r = client.completions.create(
        model="tiny", prompt="The quick brown fox", max_tokens=10, temperature=0, logprobs=2
    )
    c = r.choices[0]
    assert c.text == want.text and c.finish_reason == want.finish_reason
    np.testing.assert_allclose(c.logprobs.token_logprobs, want.logprobs, atol=1e-5)
    assert all(len(t) <= 2 for t in c.logprobs.top_logprobs)
    assert r.usage.prompt_tokens == len(want.prompt_ids)
    chunks = list(
        client.completions.create(
            model="tiny", prompt="The quick brown fox", max_tokens=10, temperature=0,
            stream=True, stream_options={"include_usage": True},
        )
    )
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == want.text
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == want.finish_reason
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens
    many = client.completions.create(
        model="tiny", prompt=["Good morning", "The cat"], max_tokens=6, temperature=1.0, seed=3, n=3
    )
    again = client.completions.create(
        model="tiny", prompt=["Good morning", "The cat"], max_tokens=6, temperature=1.0, seed=3, n=3
    )
    assert len(many.choices) == 6
    assert [c.text for c in many.choices] == [c.text for c in again.choices]  # seeded


def test_chat_plain_and_stream(served, engine):
    _, client, _ = served
    messages = [{"role": "user", "content": "Good morning"}]
    want = generate_chat(engine, [messages], max_new_tokens=8)[0]
    r = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2
    )
    assert r.choices[0].message.content == want.text
    assert [e.logprob for e in r.choices[0].logprobs.content] == pytest.approx(want.logprobs, abs=1e-5)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=8, temperature=0, stream=True, n=2
    )
    texts = {0: "", 1: ""}
    finish = {}
    for ch in stream:
        for c in ch.choices:
            texts[c.index] += c.delta.content or ""
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    assert texts == {0: want.text, 1: want.text} and finish == {0: want.finish_reason, 1: want.finish_reason}


@pytest.mark.slow
def test_stream_holds_back_stop_strings(served, engine):
    _, client, _ = served
    full = engine.generate(["Le renard brun"], max_new_tokens=12, ignore_eos=True)[0].text
    # 12 tokens with ignore_eos always give text: a stop string inside it that is not at the
    # start (the held-back text before it must still stream) and holds no whitespace
    stops = [full[i:i + 2] for i in range(1, len(full) - 1) if full[i:i + 2].strip() == full[i:i + 2]]
    assert stops, f"the engine generated no usable text: {full!r}"
    stop = stops[0]
    want = engine.generate(["Le renard brun"], max_new_tokens=12, ignore_eos=True, stop_strings=[stop])[0]
    chunks = client.completions.create(
        model="tiny", prompt="Le renard brun", max_tokens=12, temperature=0, stop=[stop],
        stream=True, extra_body={"ignore_eos": True},
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == want.text
    assert stop not in want.text


def test_echo_prompt_logprobs_match_scoring(served, engine, tokenizer):
    url, _, _ = served
    from eurollm_jax.inference import loglikelihood

    ids = engine.encode("All human beings are born free")
    r = httpx.post(
        url + "/v1/completions",
        headers={"Authorization": "Bearer sekrit"},
        json={"prompt": ids, "max_tokens": 1, "temperature": 0, "logprobs": 1, "echo": True},
        timeout=120,
    ).json()
    lp = r["choices"][0]["logprobs"]
    assert lp["token_logprobs"][0] is None and len(lp["token_logprobs"]) == len(ids) + 1
    want = loglikelihood(engine, [(ids[:1], ids[1:])])[0]
    np.testing.assert_allclose(lp["token_logprobs"][1 : len(ids)], want.token_logprobs, atol=1e-5)
    for tok, top in zip(lp["token_logprobs"][1:-1], lp["top_logprobs"][1:-1]):
        assert tok <= max(top.values())
    assert r["choices"][0]["text"].startswith(tokenizer.decode(ids))


def test_auth_metrics_and_errors(served):
    url, _, _ = served
    bad = httpx.post(url + "/v1/completions", json={"prompt": "x"}, timeout=30)
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(url + "/health", timeout=30).status_code == 200  # no key needed
    m = httpx.get(url + "/metrics", timeout=30).json()
    assert {"queue_length", "running_slots", "tokens_per_s"} <= set(m)
    client = openai.OpenAI(base_url=url + "/v1", api_key="sekrit", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="x", max_tokens=10_000)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4", prompt="x", max_tokens=1)


def _running(url):
    return httpx.get(url + "/metrics", timeout=30).json()["running_slots"]


@pytest.mark.slow
def _idle(url) -> dict | None:
    m = httpx.get(url + "/metrics", timeout=30).json()
    settled = m["finished"] + m["cancelled"] == m["requests"]
    return m if settled and m["running_slots"] == 0 and m["queue_length"] == 0 else None


@pytest.mark.slow
def test_killed_client_frees_its_slot(served):
    """A client that hangs up (streaming: after the first event; not streaming: by timing
    out) has its rows cancelled and their slots freed, as the metrics endpoint shows."""
    url, _, _ = served
    headers = {"Authorization": "Bearer sekrit"}
    body = {"prompt": "Good morning", "max_tokens": 190, "temperature": 0, "ignore_eos": True}
    for stream, rows in ((True, 1), (False, 4)):
        deadline = time.time() + 120
        while (before := _idle(url)) is None:
            assert time.time() < deadline
            time.sleep(0.05)
        try:
            with httpx.Client(timeout=120 if stream else 0.3) as c:
                if stream:
                    with c.stream("POST", url + "/v1/completions", headers=headers,
                                  json=dict(body, stream=True)) as r:
                        assert r.status_code == 200
                        for _ in r.iter_lines():
                            break  # the first event, then hang up
                else:
                    c.post(url + "/v1/completions", headers=headers, json=dict(body, n=rows))
        except httpx.TimeoutException:
            assert not stream  # the non-streaming client gives up
        while (after := _idle(url)) is None:
            assert time.time() < deadline, "the killed client's slots were not freed"
            time.sleep(0.05)
        assert after["cancelled"] - before["cancelled"] == rows
        # far fewer than rows x 190 tokens were made before the slots were freed
        assert after["generated_tokens"] - before["generated_tokens"] < rows * 190


@pytest.mark.slow
def test_full_queue_answers_429(engine):
    app = create_app(engine, ServerConfig(model_name="tiny", max_batch_size=1, max_queue=1))
    with running_app(app) as url:
        body = {"prompt": "Good", "max_tokens": 100, "temperature": 0, "ignore_eos": True}
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(
                lambda _: httpx.post(url + "/v1/completions", json=body, timeout=120).status_code,
                range(6),
            ))
        assert 429 in codes and 200 in codes, codes
        r = httpx.post(url + "/v1/completions", json=dict(body, max_tokens=2), timeout=120)
        assert r.status_code == 200


@pytest.mark.slow
def test_load_64_concurrent_mixed_requests(served, engine):
    """64 concurrent requests of mixed lengths on localhost: no errors, every one complete
    and equal to the engine's greedy output."""
    url, client, _ = served
    rng = np.random.default_rng(5)
    words = "the quick brown fox jumps over the lazy dog good morning".split()
    prompts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 30, size=64)]
    budgets = [int(x) for x in rng.integers(1, 20, size=64)]
    t0 = time.time()

    def one(i):
        return client.completions.create(
            model="tiny", prompt=prompts[i], max_tokens=budgets[i], temperature=0, timeout=300
        )

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(64)))
    assert time.time() - t0 < 300
    for i, r in enumerate(results):
        want = engine.generate([prompts[i]], max_new_tokens=budgets[i])[0]
        assert r.choices[0].text == want.text and r.choices[0].finish_reason == want.finish_reason
