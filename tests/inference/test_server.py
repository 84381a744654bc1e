"""The OpenAI-compatible server over real HTTP: batching, schema, errors."""

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from eurollm_jax.inference.server import (  # noqa: E402
    ServerConfig,
    create_app,
    running_app,
    running_server,
)

pytestmark = pytest.mark.torch  # the fixtures build a transformers model


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(engine):
    config = ServerConfig(
        model_name="tiny",
        max_batch_size=16,
        batch_wait_s=0.3,
        max_body_bytes=20_000,
        max_tokens_limit=64,
    )
    app = create_app(engine, config)
    with running_app(app) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=120) as client:
            yield client, app


PROMPTS = [
    "The quick brown fox",
    "Good morning, how",
    "Question: what is two plus two? Answer:",
    "All human beings are",
    "Le renard brun",
    "Numbers: one two",
]


def test_models_and_health(server):
    client, _ = server
    assert client.get("/health").json() == {"status": "ok"}
    data = client.get("/v1/models").json()
    assert data["object"] == "list" and [m["id"] for m in data["data"]] == ["tiny"]


def test_concurrent_requests_are_batched_and_correct(server, engine):
    client, app = server
    chat = [{"role": "user", "content": "Good morning"}]
    expected = engine.generate(PROMPTS, max_new_tokens=8)
    from eurollm_jax.inference import generate_chat

    expected_chat = generate_chat(engine, [chat], max_new_tokens=8)[0]
    before = app.state.scheduler.metrics()

    def completion(p):
        return client.post(
            "/v1/completions",
            json={"model": "tiny", "prompt": p, "max_tokens": 8, "temperature": 0},
        )

    def chat_call(_):
        return client.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": chat, "max_tokens": 8, "temperature": 0},
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(completion, p) for p in PROMPTS] + [
            pool.submit(chat_call, i) for i in range(2)
        ]
        responses = [f.result() for f in futures]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    for r, want in zip(responses[: len(PROMPTS)], expected):
        body = r.json()
        assert body["object"] == "text_completion" and body["model"] == "tiny"
        choice = body["choices"][0]
        assert choice["text"] == want.text and choice["finish_reason"] == want.finish_reason
        assert body["usage"]["prompt_tokens"] == len(want.prompt_ids)
    for r in responses[len(PROMPTS) :]:
        body = r.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": expected_chat.text}
    stats = app.state.scheduler.metrics()
    assert stats["finished"] - before["finished"] == len(responses)
    # several requests were prefilled together or decoded side by side
    assert stats["decode_dispatches"] - before["decode_dispatches"] < 8 * len(responses)


def test_logprobs_n_and_seeds(server):
    client, _ = server
    body = client.post(
        "/v1/completions",
        json={
            "prompt": ["Good morning", "The cat"],
            "max_tokens": 5,
            "temperature": 0,
            "logprobs": 2,
            "ignore_eos": True,
        },
    ).json()
    assert len(body["choices"]) == 2
    for c in body["choices"]:
        lp = c["logprobs"]
        assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 5
        assert all(len(t) <= 2 for t in lp["top_logprobs"]) and all(
            x <= 0 for x in lp["token_logprobs"]
        )
    req = {
        "messages": [{"role": "user", "content": "The cat"}],
        "max_tokens": 6,
        "temperature": 1.0,
        "top_p": 0.9,
        "seed": 5,
        "n": 3,
        "logprobs": True,
        "top_logprobs": 2,
    }
    a = client.post("/v1/chat/completions", json=req).json()
    b = client.post("/v1/chat/completions", json=req).json()
    assert len(a["choices"]) == 3
    assert [c["message"]["content"] for c in a["choices"]] == [
        c["message"]["content"] for c in b["choices"]
    ]
    content = a["choices"][0]["logprobs"]["content"]
    assert content and all(len(e["top_logprobs"]) == 2 and "bytes" in e for e in content)


@pytest.mark.parametrize(
    "payload,status",
    [
        (b"{not json", 400),
        ({"model": "tiny"}, 400),  # no prompt
        ({"prompt": "x", "temperature": "hot"}, 400),
        ({"prompt": "x", "max_tokens": -1}, 400),
        ({"prompt": "x", "max_tokens": 1000}, 400),  # over the server's limit
        ({"prompt": "x", "model": "gpt-4"}, 404),
        ({"prompt": "x", "echo": True, "stream": True}, 400),
        ({"prompt": "x", "presence_penalty": 3}, 400),
        ({"prompt": "x", "logit_bias": {"5": 1.0}}, 400),
        ({"prompt": "word " * 300}, 400),  # longer than the context
        ({"prompt": [[1, 9999]]}, 400),  # token outside the vocabulary
        ({"prompt": "x" * 30_000}, 413),  # body over the limit
        ([1, 2, 3], 400),
    ],
)
def test_malformed_requests_get_json_4xx_and_server_keeps_serving(server, payload, status):
    client, _ = server
    if isinstance(payload, bytes):
        r = client.post(
            "/v1/completions", content=payload, headers={"content-type": "application/json"}
        )
    else:
        r = client.post("/v1/completions", json=payload)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"]
    ok = client.post(
        "/v1/completions", json={"prompt": "Good morning", "max_tokens": 2, "temperature": 0}
    )
    assert ok.status_code == 200 and ok.json()["choices"][0]["text"] is not None


def test_chat_errors(server):
    client, _ = server
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 400
    assert (
        client.post(
            "/v1/chat/completions", json={"messages": [{"role": "robot", "content": "x"}]}
        ).status_code
        == 400
    )
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
    )
    assert r.status_code == 400 and "text" in r.json()["error"]["message"]
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/completions").status_code == 405


def test_launch_serve_subprocess(hf_dir):
    """``python -m launch.serve`` starts, binds 127.0.0.1 and answers a chat request."""
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launch.serve",
            "--checkpoint",
            hf_dir[0],
            "--port",
            str(port),
            "--model_name",
            "tiny",
            "--param_dtype",
            "float32",
            "--compute_dtype",
            "float32",
            "--log_level",
            "warning",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline, "launch.serve did not come up"
            time.sleep(0.3)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=120,
            json={
                "model": "tiny",
                "messages": [{"role": "user", "content": "Good morning"}],
                "max_tokens": 4,
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["usage"]["completion_tokens"] <= 4
        assert json.loads(r.text)["model"] == "tiny"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_running_server_starts_serves_and_stops(engine):
    """Interface B: a real server on a free port for the ``with`` block, gone after it."""
    with running_server(engine, ServerConfig(model_name="tiny")) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert httpx.get(base_url + "/health", timeout=30).json() == {"status": "ok"}
        r = httpx.post(
            base_url + "/v1/completions",
            json={"prompt": "Good morning", "max_tokens": 2, "temperature": 0},
            timeout=120,
        )
        assert r.status_code == 200, r.text
    with pytest.raises(httpx.TransportError):
        httpx.get(base_url + "/health", timeout=2)
