"""Token corpora written straight to ArrayRecord (tests, benchmarks): same layout as the job.

``write_token_corpus(dir, {"en/web": [ids, ...], ...})`` writes shards, completion markers
and ``manifest.json`` exactly as ``tokenize_job.run`` would, without a tokenizer.
``lognormal_documents`` draws web-like document lengths.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from eurollm_jax.data.tokenize_job import ShardWriters, build_manifest, write_marker


def write_token_corpus(
    output_dir: str,
    sources: Mapping[str, Sequence],
    kind: str = "pretrain",
    records_per_shard: int = 1_000_000,
    tokenizer_sha256: str = "synthetic",
) -> dict:
    """Write ``{"<lang>/<source>": [tokens | (tokens, loss_mask), ...]}``; return the manifest."""
    for name, docs in sources.items():
        lang, _, source = name.partition("/")
        if not lang or not source:
            raise ValueError(f"source names are '<lang>/<source>', got {name!r}")
        key = f"synthetic-{lang}-{source}"
        writers = ShardWriters(output_dir, key, records_per_shard)
        for doc in docs:
            tokens, mask = doc if isinstance(doc, tuple) else (doc, None)
            writers.write(name, tokens, mask)
        shards = writers.close()
        write_marker(output_dir, {
            "input": f"synthetic:{name}", "key": key, "kind": kind,
            "tokenizer_sha256": tokenizer_sha256, "shards": shards,
            "bad_input": {}, "seconds": 0.0, "docs": sum(s["records"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards), "bytes": 0,
        })
    return build_manifest(output_dir)


def lognormal_documents(
    n: int, mean_tokens: float = 600.0, sigma: float = 1.0, vocab_size: int = 128_000,
    seed: int = 0, max_tokens: int = 32_768,
) -> list[np.ndarray]:
    """``n`` random documents with log-normal lengths of the given mean (web-like)."""
    rng = np.random.default_rng(seed)
    mu = np.log(mean_tokens) - sigma ** 2 / 2
    lengths = np.clip(rng.lognormal(mu, sigma, size=n).astype(np.int64), 1, max_tokens)
    return [rng.integers(5, vocab_size, size=int(length), dtype=np.int32) for length in lengths]
