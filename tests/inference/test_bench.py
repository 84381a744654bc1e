"""``python -m launch.bench decode`` runs and reports both implementations and their ratio."""

import json

import pytest

pytestmark = pytest.mark.torch


def test_decode_bench_small(tmp_path, capsys):
    from launch.bench import main

    out = tmp_path / "bench.json"
    rc = main(
        [
            "decode",
            "--batch",
            "2",
            "--prompt_len",
            "8",
            "--new_tokens",
            "4",
            "--repeats",
            "1",
            "--dtype",
            "float32",
            "--torch_threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ratio eurollm_jax / transformers" in printed
    summary = json.loads(out.read_text())
    assert summary["new_tokens"] == 4 and len(summary["results"]) == 2
    assert all(r["new_tokens_per_s"] > 0 for r in summary["results"])
    assert summary["ratio_jax_over_transformers"] > 0


def test_decode_bench_shapes():
    from eurollm_jax.inference.bench import _parse

    args = _parse(["decode", "--shape", "1.7b"])
    assert (args.batch, args.prompt_len, args.new_tokens) == (64, 512, 256)
    args = _parse(["decode", "--batch", "3"])
    assert (args.batch, args.prompt_len, args.new_tokens) == (3, 64, 64)
