"""``python -m launch.prm`` (usage and errors) and ``python -m launch.bench prm``."""

import subprocess
import sys


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=__file__.rsplit("/tests/", 1)[0])


def test_usage_and_missing_flags():
    out = _run("launch.prm")
    assert out.returncode == 2 and "train|score|best_of_n" in out.stderr
    out = _run("launch.prm", "score")
    assert out.returncode == 1 and "--prm" in out.stderr


def test_bench_prints_the_ratio():
    out = _run("launch.bench", "prm", "--solutions=8", "--preset=tiny")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ratio batched / one at a time" in out.stdout
