"""Data benchmark: ``python -m launch.bench data [--seconds=5 --batch_size=16 --seq_len=4096]``.

Measures, on this machine:

1. Tokenization throughput (MB of UTF-8 text per second): the tokenization job on the demo
   corpus (replicated to ``--tokenize_mb``) with 1 and 2 worker processes, and SentencePiece
   ``encode_batch`` alone as the ceiling.
2. Input pipeline throughput (real tokens per second delivered as host batches ``[B, T]``
   with tokens, segment_ids, positions, loss_mask) from ArrayRecord shards through mixing and
   packing: the Grain pipeline in-process (0 workers) and with 1 and 2 worker processes, side
   by side with a plain Python loop over the same shards (sequential reads, concatenate and
   split, the same four arrays; no mixture, shuffling or checkpointable state). Two corpora:
   ``demo`` (the demo corpus tokenized: 91 small sources, ~240-token documents) and ``web``
   (4 synthetic sources of log-normal documents, mean ``--mean_tokens``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from typing import Sequence

import numpy as np


def _plain_loop(paths: Sequence[str], batch_size: int, seq_len: int, seconds: float,
                max_batches: int) -> tuple[float, int]:
    """Sequential read -> concat-and-split -> [B, T] arrays, as one would write by hand."""
    from array_record.python.array_record_module import ArrayRecordReader

    readers = [ArrayRecordReader(p, "readahead_buffer_size:0") for p in paths]
    size = batch_size * seq_len
    docs: list[np.ndarray] = []
    buffered = 0
    tokens_out = 0
    batches = 0
    start = time.perf_counter()

    def emit(docs):
        flat = np.concatenate(docs)
        lengths = np.array([len(d) for d in docs])
        starts = np.zeros(len(flat), dtype=np.int32)
        starts[np.cumsum(lengths)[:-1]] = 1
        starts[::seq_len] = 1  # a row start opens a segment
        tokens = flat[:size].reshape(batch_size, seq_len)
        seg = np.cumsum(starts[:size].reshape(batch_size, seq_len), axis=1).astype(np.int32)
        boundary = np.nonzero(starts[:size])[0]
        seg_start = boundary[np.searchsorted(boundary, np.arange(size), side="right") - 1]
        positions = (np.arange(size) - seg_start).astype(np.int32).reshape(batch_size, seq_len)
        loss_mask = np.ones_like(tokens)
        return {"tokens": tokens, "segment_ids": seg, "positions": positions,
                "loss_mask": loss_mask}, flat[size:]

    while True:
        for reader in readers:
            n = reader.num_records()
            for lo in range(0, n, 1024):
                for rec in reader.read(lo, min(n, lo + 1024)):
                    arr = np.frombuffer(rec, dtype="<i4")[1:]
                    docs.append(arr)
                    buffered += len(arr)
                    while buffered >= size:
                        batch, rest = emit(docs)
                        docs = [rest] if len(rest) else []
                        buffered = len(rest)
                        tokens_out += int(np.count_nonzero(batch["segment_ids"]))
                        batches += 1
                        elapsed = time.perf_counter() - start
                        if batches >= max_batches or elapsed >= seconds:
                            return tokens_out / elapsed, batches


def _pipeline(manifest: str, batch_size: int, seq_len: int, workers: int, seconds: float,
              max_batches: int) -> tuple[float, int, float, float]:
    from eurollm_jax.data.pipeline import PipelineConfig, make_iterator

    config = PipelineConfig(manifest=manifest, batch_size=batch_size, seq_len=seq_len,
                            mixture="proportional", num_workers=workers, shard_index=0,
                            shard_count=1, worker_buffer_size=2)
    start_up = time.perf_counter()
    with make_iterator(config) as it:
        next(it)  # start-up: worker processes, first reads
        next(it)
        start_up = time.perf_counter() - start_up
        tokens = 0
        batches = 0
        start = time.perf_counter()
        while True:
            batch = next(it)
            tokens += int(np.count_nonzero(batch["segment_ids"]))
            batches += 1
            elapsed = time.perf_counter() - start
            if batches >= max_batches or elapsed >= seconds:
                return tokens / elapsed, batches, start_up, it.padding_fraction


def _shard_paths(manifest_dir: str) -> list[str]:
    from eurollm_jax.data.tokenize_job import load_manifest

    manifest = load_manifest(manifest_dir)
    return [os.path.join(manifest["root"], p)
            for entry in manifest["sources"].values() for p in entry["shards"]]


def _tokenization(work: str, corpus_train: str, tokenizer: str, target_mb: float,
                  workers: Sequence[int]) -> list[tuple[str, float]]:
    from eurollm_jax.data.tokenize_job import TokenizeConfig, read_markers, run
    from eurollm_jax.tokenizer import Tokenizer

    with open(corpus_train, encoding="utf-8") as f:
        lines = f.read().splitlines()
    size = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    reps = max(1, int(np.ceil(target_mb / max(size, 1e-9))))
    inputs = []
    for k in range(4):  # four input files, so two workers have work to share
        path = os.path.join(work, "tok_inputs", f"part{k}.jsonl")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for _ in range(max(1, -(-reps // 4))):
                f.write("\n".join(lines) + "\n")
        inputs.append(path)
    results = []
    tok = Tokenizer.load(tokenizer)
    texts = [json.loads(line)["text"] for line in lines]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    for threads, label in ((1, "encode_batch, 1 thread"),
                           (os.cpu_count() or 1, f"encode_batch, {os.cpu_count()} threads")):
        start = time.perf_counter()
        for _ in range(3):
            tok.encode_batch(texts, num_threads=threads)
        results.append((f"SentencePiece {label} (no I/O)", 3 * mb / (time.perf_counter() - start)))
    for w in workers:
        out = os.path.join(work, f"tok_out_{w}")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        manifest = run(TokenizeConfig(inputs, out, tokenizer, num_workers=w),
                       progress=lambda m: None)
        elapsed = time.perf_counter() - start
        busy = sum(m["seconds"] for m in read_markers(out).values()) / w  # per worker, no spawn
        results.append((f"tokenization job, {w} worker(s): wall clock incl. process start-up",
                        manifest["totals"]["bytes"] / 1e6 / elapsed))
        results.append((f"tokenization job, {w} worker(s): steady state (worker busy time)",
                        manifest["totals"]["bytes"] / 1e6 / busy))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launch.bench data", description=__doc__)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seq_len", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--max_batches", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2", help="Grain worker counts besides 0")
    parser.add_argument("--tokenize_workers", default="1,2", help="tokenization job processes")
    parser.add_argument("--corpora", default="demo,web")
    parser.add_argument("--web_docs", type=int, default=8000, help="per synthetic source")
    parser.add_argument("--mean_tokens", type=float, default=600.0)
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--tokenize_mb", type=float, default=12.0)
    parser.add_argument("--work_dir", default=None)
    args = parser.parse_args(list(argv or [])[1:])
    workers = [int(w) for w in args.workers.split(",") if w]

    from eurollm_jax.data import demo_corpus
    from eurollm_jax.data.synthetic import lognormal_documents, write_token_corpus
    from eurollm_jax.data.tokenize_job import TokenizeConfig, run
    from eurollm_jax.tokenizer import TokenizerTrainConfig, jsonl_corpus, train_tokenizer

    work = args.work_dir or tempfile.mkdtemp(prefix="eurollm_data_bench_")
    print(f"machine: {os.cpu_count()} CPU cores; batch [{args.batch_size}, {args.seq_len}]; "
          f"work dir {work}")
    t0 = time.perf_counter()
    stats = demo_corpus.build(os.path.join(work, "demo_corpus"))
    train_path = stats["paths"]["train"]
    tok_path = os.path.join(work, "tokenizer.model")
    train_tokenizer(jsonl_corpus([train_path]), tok_path,
                    TokenizerTrainConfig(vocab_size=args.vocab_size,
                                         num_threads=os.cpu_count() or 1))
    print(f"demo corpus + tokenizer (vocab {args.vocab_size}): {time.perf_counter() - t0:.1f}s")

    print("\n## Tokenization throughput (MB/s of UTF-8 text)\n")
    print("| what | MB/s |\n|---|---|")
    tok_workers = [int(w) for w in args.tokenize_workers.split(",") if w]
    for label, rate in _tokenization(work, train_path, tok_path, args.tokenize_mb, tok_workers):
        print(f"| {label} | {rate:.2f} |")

    corpora = {}
    if "demo" in args.corpora:
        out = os.path.join(work, "tokens_demo")
        shutil.rmtree(out, ignore_errors=True)
        run(TokenizeConfig([train_path], out, tok_path), progress=lambda m: None)
        corpora["demo"] = out
    if "web" in args.corpora:
        out = os.path.join(work, "tokens_web")
        shutil.rmtree(out, ignore_errors=True)
        sources = {name: lognormal_documents(args.web_docs, args.mean_tokens, seed=i)
                   for i, name in enumerate(("en/web", "de/web", "fr/web", "mt/web"))}
        write_token_corpus(out, sources, records_per_shard=max(args.web_docs // 2, 1))
        corpora["web"] = out

    print("\n## Input pipeline: real tokens/s into host batches "
          f"[{args.batch_size}, {args.seq_len}]\n")
    print("| corpus | reader | tokens/s | per core | vs plain loop | start-up s | padding |")
    print("|---|---|---|---|---|---|---|")
    for name, directory in corpora.items():
        plain, _ = _plain_loop(_shard_paths(directory), args.batch_size, args.seq_len,
                               args.seconds, args.max_batches)
        print(f"| {name} | plain Python loop (1 process) | {plain:,.0f} | {plain:,.0f} | 1.00 "
              "| - | 0.000 |")
        for w in [0] + workers:
            rate, _, start_up, padding = _pipeline(directory, args.batch_size, args.seq_len, w,
                                                   args.seconds, args.max_batches)
            label = "Grain pipeline, in-process" if w == 0 else f"Grain pipeline, {w} worker(s)"
            per_core = rate / max(w, 1)
            print(f"| {name} | {label} | {rate:,.0f} | {per_core:,.0f} | {rate / plain:.2f} | "
                  f"{start_up:.1f} | {padding:.3f} |")
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(["bench"] + sys.argv[1:]))
