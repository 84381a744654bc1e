"""EuroFilter annotation job: score parsing, the OpenAI-compatible HTTP client against a fake
server started here, resume, and the real paths: the in-process engine and `launch.serve`."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eurollm_jax.filtering import Document
from eurollm_jax.filtering.annotate import (
    InProcessClient,
    OpenAIClient,
    annotate,
    build_prompt,
    parse_score,
    read_annotations,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("answer,score", [
    ("The text explains photosynthesis.\nEducational score: 4", 4),
    ("Educational Score: **3**/5", 3),
    ("educational score = 5.", 5),
    ("Points: 2", 2),
    ("I would give it 1 point.", 1),
    ("Overall 3/5, it is fine.", 3),
    ("Score: 2 ... wait, Educational score: 1", 1),
    ("It mentions 2024 and 7 topics.", None),
    ("", None),
    (None, None),
    ("no idea", None),
    ("Final answer: 0", 0),
])
def test_parse_score(answer, score):
    assert parse_score(answer) == score


def test_prompt_contains_rubric_and_truncates():
    p = build_prompt("x" * 10000, max_chars=100)
    assert "Educational score: <points>" in p and "x" * 100 + " [...]" in p
    assert "x" * 101 not in p


class _FakeOpenAI(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        prompt = (body["messages"][-1]["content"] if self.path.endswith("/chat/completions")
                  else body["prompt"])
        extract = prompt.split("<<<", 1)[1]
        grade = 0 if ("Home |" in extract or "buy" in extract) else 4
        text = f"Reasoning about the page.\nEducational score: {grade}"
        choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                   "finish_reason": "stop"} if self.path.endswith("/chat/completions")
                  else {"index": 0, "text": text, "finish_reason": "stop"})
        data = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                           "choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_server():
    _FakeOpenAI.calls = []
    _FakeOpenAI.fail_first = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FakeOpenAI
    server.shutdown()
    server.server_close()


def _docs(n):
    return [Document(f"d{i}", ("Home | About | buy now" if i % 3 == 0 else
                                f"Lesson {i}: plants turn light into sugar."), {"language": "en"})
            for i in range(n)]


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_http_client_annotates_and_resumes(fake_server, tmp_path, mode):
    url, handler = fake_server
    handler.fail_first = 1  # a transient 503 is retried
    client = OpenAIClient(url, "eurollm", mode=mode, concurrency=4, retries=2)
    path = str(tmp_path / "ann.jsonl")
    stats = annotate(_docs(10), client, path, batch_size=4)
    assert stats == {"annotated": 10, "skipped": 0, "unparsed": 0, "errors": 0}
    assert all(p.endswith(f"/v1/{'chat/completions' if mode == 'chat' else 'completions'}")
               for p, _ in handler.calls)
    # batches [d0-d3] [d4-d7] [d8 d9]: d0 and d3 have the same text, so their one prompt is sent
    # once (3 + 4 + 2 requests), plus the retry of the transient 503
    assert len(handler.calls) == 10 and handler.calls[0][1]["temperature"] == 0.0
    recs = read_annotations(path)
    assert [r["score"] for r in recs[:4]] == [0, 4, 4, 0]
    assert {r["model"] for r in recs} == {client.name}
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "d10", "text": "torn')  # a crash mid-write
    handler.calls.clear()
    stats = annotate(_docs(14), client, path, batch_size=4)
    assert stats == {"annotated": 4, "skipped": 10, "unparsed": 0, "errors": 0}
    assert len(handler.calls) == 4
    recs = read_annotations(path)
    assert [r["id"] for r in recs] == [f"d{i}" for i in range(14)]


def test_http_client_errors(fake_server, tmp_path):
    url, handler = fake_server
    handler.fail_first = 10
    assert OpenAIClient(url, retries=1).complete(["a"]) == [""]
    assert len(handler.calls) == 2  # one try + one retry
    with pytest.raises(RuntimeError, match=r"failed \(server_error: .*retried up to 1 times"):
        OpenAIClient(url, retries=1, raise_errors=True).complete(["a"])
    with pytest.raises(ValueError, match="mode"):
        OpenAIClient(url, mode="stream")
    # a failed request is recorded with its reason, the job goes on
    handler.fail_first = 2
    path = str(tmp_path / "ann.jsonl")
    stats = annotate(_docs(3), OpenAIClient(url, retries=0, concurrency=1), path, batch_size=3)
    assert stats == {"annotated": 3, "skipped": 0, "unparsed": 2, "errors": 2}
    recs = read_annotations(path, require_score=False)
    assert [r.get("error", "").split(":")[0] for r in recs] == ["server_error"] * 2 + [""]
    assert recs[2]["score"] == 4


def test_shared_llm_client_with_cache(fake_server, tmp_path):
    from eurollm_jax.llm import LLMClient

    url, handler = fake_server
    cache = str(tmp_path / "cache")
    client = LLMClient.from_endpoint(url, "eurollm", cache_dir=cache)
    stats = annotate(_docs(4), client, str(tmp_path / "a.jsonl"), batch_size=2)
    assert stats["annotated"] == 4 and len(handler.calls) == 3  # d3's prompt is d0's: cached
    assert [r["score"] for r in read_annotations(str(tmp_path / "a.jsonl"))] == [0, 4, 4, 0]
    # another output file, same cache: every answer comes from the cache, nothing is sent
    handler.calls.clear()
    again = OpenAIClient(url, "eurollm", max_tokens=256, cache_dir=cache)
    annotate(_docs(4), again, str(tmp_path / "b.jsonl"), batch_size=2)
    assert handler.calls == [] and again.llm.usage["cached"] == 4


def test_in_process_engine_end_to_end(chat_model_dir, tmp_path):
    inference = pytest.importorskip("eurollm_jax.inference")
    model, tok = inference.load_for_inference(chat_model_dir)
    client = InProcessClient(model, tok, max_new_tokens=8, batch_size=2)
    assert client.chat  # the tokenizer has <|im_start|>/<|im_end|>: ChatML prompts
    path = str(tmp_path / "ann.jsonl")
    stats = annotate(_docs(3), client, path, batch_size=2, max_chars=300)
    assert stats["annotated"] == 3
    recs = read_annotations(path, require_score=False)
    assert len(recs) == 3 and all(isinstance(r["raw"], str) for r in recs)
    # a random tiny model's grades are meaningless; the engine must really have generated text
    assert any(r["raw"] for r in recs)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launch_serve_over_http(chat_model_dir, tmp_path):
    pytest.importorskip("eurollm_jax.inference.server")
    pytest.importorskip("launch.serve")
    pytest.importorskip("uvicorn")
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launch.serve", "--checkpoint", chat_model_dir, "--port", str(port),
         "--param_dtype", "float32", "--model_name", "eurollm", "--log_level", "warning"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("launch.serve exited: " + proc.stderr.read().decode()[-2000:])
                if time.time() > deadline:
                    pytest.fail("launch.serve did not come up in 180 s")
                time.sleep(0.5)
        for mode in ("chat", "completions"):
            client = OpenAIClient(f"http://127.0.0.1:{port}", "eurollm", mode=mode,
                                  max_tokens=8, concurrency=2, retries=0, raise_errors=True)
            path = str(tmp_path / f"{mode}.jsonl")
            stats = annotate(_docs(3), client, path, batch_size=3, max_chars=300)
            assert stats["annotated"] == 3
            recs = read_annotations(path, require_score=False)
            assert len(recs) == 3 and any(r["raw"] for r in recs)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_annotate_cli_against_http_server(fake_server, tmp_path):
    url, handler = fake_server
    inp = tmp_path / "docs.jsonl"
    inp.write_text("\n".join(json.dumps({"id": d.id, "text": d.text}) for d in _docs(6))
                   + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "ann"
    cmd = [sys.executable, "-m", "launch.filter", "--job=annotate",
           "--config=configs/filter_annotate.py", f"--input={inp}", f"--output={out}",
           f"--config.annotate.base_url={url}", "--config.annotate.mode=completions",
           "--config.annotate.limit=5"]
    res = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=""),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    recs = read_annotations(str(out / "annotations.jsonl"))
    assert [r["id"] for r in recs] == [f"d{i}" for i in range(5)]  # the broken line is skipped
    # d0 and d3 have the same text: one request for both
    assert len(handler.calls) == 4 and all(p == "/v1/completions" for p, _ in handler.calls)
