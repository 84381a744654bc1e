"""The synthesis benchmark runs end to end (small; the numbers are not checked here)."""

import pytest


@pytest.mark.slow
def test_bench_runs_and_reports_the_ratio_and_cache_path(capsys):
    from eurollm_jax.synthesis.bench import main

    assert main(["launch.bench synthesis", "--requests=4", "--repeats=1", "--max_tokens=4",
                 "--batching=static"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["concurrency_1"]["requests_per_s"] > 0 and out["ratio"] > 0
    assert out["cache_hit"]["sent"] == 0 and out["cache_hit"]["requests_per_s"] > 0
