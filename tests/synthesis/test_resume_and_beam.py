"""A job killed midway (``launch.synthesize`` in a subprocess, SIGKILL from the server side) and
rerun answers no request twice (counted by the server) and writes what an uninterrupted run
writes; the Beam DirectRunner writes what the local runner writes."""

import filecmp
import os
import subprocess
import sys
import threading

import pytest

from eurollm_jax.synthesis import run_local
from tests.llm.helpers import CountingApp, scripted_app, serve
from tests.synthesis.conftest import SEEDS, job_config, write_seeds
from tests.synthesis.scripted import respond

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTPUT_FILES = ("sft/part-00000.jsonl", "audit/part-00000.jsonl", "dropped.jsonl")


def _same_outputs(a, b):
    import json

    for name in OUTPUT_FILES:
        assert filecmp.cmp(os.path.join(a, name), os.path.join(b, name), shallow=False), name
    ra, rb = (json.load(open(os.path.join(d, "report.json"))) for d in (a, b))
    for key in ("steps", "per_group", "drop_reasons", "sft_records", "dropped", "plan"):
        assert ra[key] == rb[key], key
    return ra


def _cli_config(seeds, url):
    """The job of configs/synthesis_euroblocks.py with these overrides, as a dict and as flags."""
    from configs.synthesis_euroblocks import get_config

    overrides = {"job.seeds": seeds, "llm.base_url": url, "llm.model": "scripted",
                 "llm.concurrency": 1, "runner.shard_size": 2, "runner.progress": False,
                 "euroblocks.min_per_language": 2,
                 "euroblocks.languages": ("en", "de", "fr", "es")}
    config = get_config()
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    flags = [f"--config.{k}={v!r}" if isinstance(v, tuple) else f"--config.{k}={v}"
             for k, v in overrides.items()]
    return config, flags


def test_killed_job_resends_nothing_and_matches_an_uninterrupted_run(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS["euroblocks"])
    reference = CountingApp(scripted_app(respond))
    with serve(reference) as url:
        config, _ = _cli_config(seeds, url)
        report = run_local(config, str(tmp_path / "reference"))
    total = sum(reference.answered.values())
    assert max(reference.answered.values()) == 1 and total == report["llm"]["requests"]

    kill_at = total // 2
    state = {"proc": None, "killed": threading.Event()}

    def hook(n):  # the n-th request reaches the server: kill the job before answering it
        if state["killed"].is_set():
            return True
        if n == kill_at:
            state["proc"].kill()
            state["killed"].set()
            return True
        return False

    app = CountingApp(scripted_app(respond), hook=hook)
    out = str(tmp_path / "killed")
    with serve(app) as url:
        config, flags = _cli_config(seeds, url)
        env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
        state["proc"] = subprocess.Popen(
            [sys.executable, "-m", "launch.synthesize", "--config=configs/synthesis_euroblocks.py",
             f"--output={out}", *flags], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        _, err = state["proc"].communicate(timeout=300)
        assert state["killed"].is_set(), err.decode()[-2000:]
        assert state["proc"].returncode < 0  # killed, not finished
        answered_before = sum(app.answered.values())
        assert 0 < answered_before < total
        assert not os.path.exists(os.path.join(out, "report.json"))
        app.hook = None
        rerun = run_local(config, out)
    assert max(app.answered.values()) == 1  # no request was answered twice
    assert sum(app.answered.values()) == total  # and none is missing
    assert rerun["llm_this_run"]["requests"] == total - answered_before
    _same_outputs(str(tmp_path / "reference"), out)


def test_beam_direct_runner_equals_local(scripted, tmp_path):
    pytest.importorskip("apache_beam")
    from eurollm_jax.synthesis.beam_runner import run_beam

    url, _ = scripted
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS["euroblocks"])
    config = job_config("euroblocks", seeds, url, shard_size=3)
    local = run_local(config, str(tmp_path / "local"))
    beam = run_beam(config, str(tmp_path / "beam"))
    assert beam["sft_records"] == local["sft_records"] > 0
    _same_outputs(str(tmp_path / "local"), str(tmp_path / "beam"))


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["xl_instruct", "context"])
def test_beam_direct_runner_equals_local_other_pipelines(scripted, tmp_path, pipeline):
    pytest.importorskip("apache_beam")
    from eurollm_jax.synthesis.beam_runner import run_beam

    url, _ = scripted
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS[pipeline])
    config = job_config(pipeline, seeds, url, shard_size=2)
    run_local(config, str(tmp_path / "local"))
    run_beam(config, str(tmp_path / "beam"))
    _same_outputs(str(tmp_path / "local"), str(tmp_path / "beam"))


@pytest.mark.slow
def test_local_multi_process_equals_inline(scripted, tmp_path):
    url, _ = scripted
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS["euroblocks"])
    config = job_config("euroblocks", seeds, url, shard_size=2)
    run_local(config, str(tmp_path / "inline"))
    run_local(config, str(tmp_path / "pool"), num_workers=2)
    _same_outputs(str(tmp_path / "inline"), str(tmp_path / "pool"))
