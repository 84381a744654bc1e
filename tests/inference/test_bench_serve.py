"""``python -m launch.bench serve`` runs end to end on a small workload and reports both
batchers, their ratio and the prefix-cache speed-up."""

import json

import pytest


@pytest.mark.slow
def test_bench_serve_small(tmp_path, capsys):
    from eurollm_jax.inference import bench_serve

    out = tmp_path / "serve.json"
    argv = [
        "launch.bench serve", "--requests", "6", "--slots", "4", "--min_prompt", "4",
        "--max_prompt", "24", "--min_new", "2", "--max_new", "12", "--prefix_len", "128",
        "--prefix_requests", "3", "--prefix_new", "2", "--clients", "3", "--client_requests",
        "2", "--client_prompt_median", "8", "--client_new_median", "4", "--json", str(out),
    ]
    assert bench_serve.main(argv) == 0
    summary = json.loads(out.read_text())
    assert set(summary["load"]) == {"continuous", "static"}
    for r in summary["load"].values():
        assert r["new_tokens_per_s"] > 0 and r["ttft_p50_s"] <= r["ttft_p99_s"]
    assert summary["ratio_continuous_over_static"] > 0
    assert set(summary["client_load"]) == {"continuous", "static"}
    assert summary["client_ratio_continuous_over_static"] > 0
    with_cache = summary["prefix"]["with prefix cache"]
    assert with_cache["prefix_cache"]["hit_tokens"] >= 2 * 128 - 64  # later requests hit
    assert "ratio continuous / static" in capsys.readouterr().out
