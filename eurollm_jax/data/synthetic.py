"""Token corpora written straight to ArrayRecord (tests, benchmarks): same layout as the job.

``write_token_corpus(dir, {"en/web": [ids, ...], ...})`` writes shards, completion markers
and ``manifest.json`` exactly as ``tokenize_job.run`` would, without a tokenizer.
``lognormal_documents`` draws web-like document lengths.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from eurollm_jax import fileio as io
from eurollm_jax.data.records import RecordWriter
from eurollm_jax.data.tokenize_job import MARKERS, build_manifest


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
        shards, writer, k = [], None, 0
        total_tokens = 0
        for doc in docs:
            tokens, mask = doc if isinstance(doc, tuple) else (doc, None)
            if writer is None or writer.records >= records_per_shard:
                if writer is not None:
                    writer.close()
                    shards.append(writer)
                rel = os.path.join(lang, source, f"{key}-{k:05d}.array_record")
                writer = RecordWriter(os.path.join(output_dir, rel))
                writer.rel = rel  # type: ignore[attr-defined]
                k += 1
            writer.write(tokens, mask)
            total_tokens += len(tokens)
        if writer is not None:
            writer.close()
            shards.append(writer)
        io.write_json(os.path.join(output_dir, MARKERS, f"{key}.json"), {
            "input": f"synthetic:{name}", "key": key, "kind": kind,
            "tokenizer_sha256": tokenizer_sha256,
            "shards": [{"path": w.rel, "name": name, "lang": lang, "source": source,
                        "records": w.records, "tokens": w.tokens} for w in shards],
            "bad_input": {}, "seconds": 0.0, "docs": sum(w.records for w in shards),
            "tokens": total_tokens, "bytes": 0,
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
