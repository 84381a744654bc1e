"""``python -m launch.bench rag`` at a small scale: every row is measured and printed."""

import json


def test_rag_bench_small(capsys):
    from eurollm_jax.rag.bench import main

    assert main(["launch.bench rag", "--passages=3000", "--queries=50", "--dim=32",
                 "--bm25_passages=500", "--e5_texts=0", "--nprobe=4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    dense = result["dense"]
    assert dense["exact"]["recall@5"] >= dense["faiss"]["recall@5"] - 1e-9  # exact is exact
    assert 0 < dense["faiss_vs_exact"]["top5_overlap"] <= 1
    assert dense["faiss"]["queries_per_s"] > 0 and result["bm25"]["build_s"] > 0
    assert result["bm25"]["recall@5"] > 0.5
