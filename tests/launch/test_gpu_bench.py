"""The prepared GPU run works end to end on CPU in its tiny mode: every stage runs, the
JSON records each stage's numbers, and a failing stage is recorded without stopping others."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_tiny_mode_runs_every_stage_and_writes_one_json(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    proc = subprocess.run(["bash", "launch/gpu_bench.sh", "--tiny", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert report["mode"] == "tiny" and report["host"]["platform"] == "cpu"
    st = report["stages"]
    assert list(st) == ["forward_backward", "train_step", "decode", "gpu_tests"]
    assert all(s["ok"] for s in st.values()), st
    assert st["forward_backward"]["tokens_per_s"] > 0 and st["train_step"]["tokens_per_s"] > 0
    assert st["decode"]["new_tokens_per_s"] > 0 and st["decode"]["batch"] == 2
    assert report["shape"]["batch"] == 2  # one device: the tiny batch
    tests = st["gpu_tests"]
    assert tests["skipped"] >= 1 and tests["passed"] >= 1  # real cuDNN calls skip on CPU


def test_a_failing_stage_is_recorded_and_sets_the_exit_status(tmp_path, monkeypatch):
    from launch import gpu_bench

    def broken(shape):
        raise RuntimeError("no GPU here")

    monkeypatch.setattr(gpu_bench, "forward_backward", broken)
    code = gpu_bench.main(["--tiny", "--out", str(tmp_path), "--stages", "forward_backward"])
    assert code == 1
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert report["stages"]["forward_backward"]["error"] == "RuntimeError: no GPU here"
