"""Each pipeline against a real model: the tiny random model served by
``inference.server.create_app`` over HTTP and the same model in process. Its answers are
gibberish, so the jobs exercise the malformed paths (no marker, unparseable score, wrong
language): every record is accounted for with a reason and nothing crashes; and both
transports give the same job output (greedy and seeded sampling match row for row)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from eurollm_jax.llm import LLMClient
from eurollm_jax.synthesis import run_local
from tests.filtering.conftest import chat_model_dir, chat_tokenizer_path  # noqa: F401 (fixtures)
from tests.synthesis.conftest import SEEDS, job_config, write_seeds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHORT = {  # tiny answers: the test is about the paths, not the text
    "euroblocks": {"euroblocks": {"answer_max_tokens": 8, "translate_max_tokens": 8,
                                  "judge_max_tokens": 8, "languages": ["en", "de", "fr"],
                                  "min_per_language": 2}},
    "xl_instruct": {"xl_instruct": {"instruction_max_tokens": 8, "response_max_tokens": 8,
                                    "judge_max_tokens": 8, "num_candidates": 2,
                                    "max_doc_chars": 200}},
    "context": {"context": {"max_tokens": 8, "min_context_words": 1, "num_distractors": 2}},
}


def _seeds(pipeline):
    return SEEDS[pipeline][:4]


def _job(pipeline, tmp_path, url):
    seeds = write_seeds(tmp_path / f"{pipeline}.jsonl", _seeds(pipeline))
    config = job_config(pipeline, seeds, url, shard_size=4, **SHORT[pipeline])
    config["llm"]["model"] = "tiny"
    return config


def _outputs(out):
    files = {}
    for name in ("sft/part-00000.jsonl", "dropped.jsonl"):
        with open(os.path.join(out, name), encoding="utf-8") as f:
            files[name] = f.read()
    report = json.load(open(os.path.join(out, "report.json")))
    return files, report


def _run_both(pipeline, tmp_path, served_tiny, engine):
    url, counting = served_tiny
    config = _job(pipeline, tmp_path, url)
    before = counting.total
    http = run_local(config, str(tmp_path / "http"))
    assert counting.total - before == http["llm"]["requests"] > 0  # all of it over HTTP
    run_local(config, str(tmp_path / "engine"),
              client=LLMClient.from_engine(engine, model_name="tiny"))
    assert counting.total - before == http["llm"]["requests"]  # the engine run sent nothing
    files_http, report_http = _outputs(str(tmp_path / "http"))
    files_engine, report_engine = _outputs(str(tmp_path / "engine"))
    for name, c in report_http["steps"].items():
        if name not in ("translate", "respond"):  # these expand records
            assert c["in"] == c["out"] + sum(c["dropped"].values()), name
    assert report_http["llm"]["errors"] == {}
    assert files_http == files_engine
    assert report_http["steps"] == report_engine["steps"]
    return report_http


def test_context_tiny_model_http_and_engine(tmp_path, served_tiny, engine):
    report = _run_both("context", tmp_path, served_tiny, engine)
    first = report["steps"]["synthesize_context"]
    assert first["in"] == 4 and first["dropped"].get("no_marker", 0) >= 1  # gibberish


@pytest.mark.slow
def test_euroblocks_tiny_model_http_and_engine(tmp_path, served_tiny, engine):
    report = _run_both("euroblocks", tmp_path, served_tiny, engine)
    reasons = report["drop_reasons"]
    # gibberish has no score: the judge drops (nearly) everything, with the reason
    assert reasons.get("judge:judge_unparseable", 0) + reasons.get(
        "generate_answer:empty_answer", 0) >= 1
    assert report["steps"]["generate_answer"]["in"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["xl_instruct"])
def test_other_pipelines_tiny_model_http_and_engine(tmp_path, served_tiny, engine, pipeline):
    report = _run_both(pipeline, tmp_path, served_tiny, engine)
    first = next(iter(report["steps"].values()))
    assert first["in"] == 4 and sum(first["dropped"].values()) >= 1  # e.g. no_marker


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_launch_synthesize_against_launch_serve(tmp_path, chat_model_dir):  # noqa: F811
    """The two entry points as a user runs them: `launch.serve` (continuous batching) on a tiny
    checkpoint, `launch.synthesize` for each pipeline against it."""
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    server = subprocess.Popen(
        [sys.executable, "-m", "launch.serve", "--checkpoint", chat_model_dir, "--port",
         str(port), "--param_dtype", "float32", "--model_name", "eurollm", "--log_level",
         "warning"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("launch.serve exited: " + server.stderr.read().decode()[-2000:])
                assert time.time() < deadline, "launch.serve did not come up"
                time.sleep(0.5)
        for pipeline in ("euroblocks", "xl_instruct", "context"):
            seeds = write_seeds(tmp_path / f"{pipeline}.jsonl", _seeds(pipeline))
            flags = [f"--config.job.seeds={seeds}",
                     f"--config.llm.base_url=http://127.0.0.1:{port}",
                     "--config.runner.progress=False"]
            for section, values in SHORT[pipeline].items():
                for k, v in values.items():
                    flags.append(f"--config.{section}.{k}={tuple(v)!r}" if isinstance(v, list)
                                 else f"--config.{section}.{k}={v}")
            out = tmp_path / pipeline
            res = subprocess.run(
                [sys.executable, "-m", "launch.synthesize",
                 f"--config=configs/synthesis_{pipeline}.py", f"--output={out}", *flags],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, res.stderr[-3000:]
            report = json.load(open(out / "report.json"))
            assert report["seeds"] == 4 and report["llm"]["requests"] > 0
            assert report["llm"]["errors"] == {}, report["llm"]
            for name, c in report["steps"].items():
                if name not in ("translate", "respond"):
                    assert c["in"] == c["out"] + sum(c["dropped"].values()), (pipeline, name)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
