"""Local multi-process runner: resumable, with per-shard completion markers and progress.

``run_local(inputs, output_dir, config)`` runs three stages; every stage writes its files
atomically and then a marker, and a restarted run skips whatever has a marker, so a run killed at
any point and started again with the same arguments loses and duplicates no document:

1. per input shard, in parallel (``runner.num_workers`` spawned processes): read, filter
   (``pipeline.process_shard``), write ``_work/stage1/<shard>.jsonl`` (every record in input
   order, kept or with its drop reason) and ``<shard>.dedup.npz`` (global keys, ids, exact keys
   and MinHash signatures of the kept documents);
2. once, over all shards: exact + MinHash clustering (``dedup.cluster``) ->
   ``_work/dedup_decisions.json``;
3. per shard, in parallel: apply the shard's dedup decisions and write ``kept/<shard>.<fmt>`` and
   ``dropped/<shard>.<fmt>`` (dropped records carry ``drop_reason``) plus per-language stats;
   finally ``report.{json,md,csv,png}`` (``report.py``).

The job's config and input list are stored in ``_work/job.json``; restarting with a different
config or inputs in the same output directory is refused (use a new ``--output``).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import sys
import time
from typing import Any, Callable, Iterable

import numpy as np

from eurollm_jax.documents import (
    ShardWriter,
    expand_inputs,
    input_stem,
    output_suffix,
    read_records,
)
from eurollm_jax.fileio import atomic_open, claim_job_dir, read_json, write_json
from eurollm_jax.filtering import report as report_lib
from eurollm_jax.filtering.dedup import cluster
from eurollm_jax.filtering.config import FilterConfig
from eurollm_jax.filtering.pipeline import KEY_SHARD_SHIFT, process_shard


def shard_names(files: list[str]) -> list[str]:
    """Unique output names per input file, in input order (``00003-<basename>``)."""
    return [f"{i:05d}-{input_stem(f)}" for i, f in enumerate(files)]


class Progress:
    """Prints ``stage: done/total shards, docs, docs/s, ETA`` lines to stderr."""

    def __init__(self, stage: str, total: int, enabled: bool = True):
        self.stage, self.total, self.enabled = stage, total, enabled
        self.done = self.docs = 0
        self.t0 = time.time()

    def update(self, docs: int = 0, skipped: bool = False) -> None:
        self.done += 1
        self.docs += docs
        if not self.enabled:
            return
        dt = max(time.time() - self.t0, 1e-9)
        rate = self.docs / dt
        eta = (self.total - self.done) * dt / max(self.done, 1)
        note = " (already done)" if skipped else ""
        print(f"[filter] {self.stage}: {self.done}/{self.total} shards, {self.docs:,} docs, "
              f"{rate:,.0f} docs/s, ETA {eta:,.0f}s{note}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- stage workers (top level)

def _stage1(task: tuple[int, str, str, str, FilterConfig]) -> int:
    index, path, name, work, cfg = task
    out = os.path.join(work, "stage1")
    n = 0
    keys, ids, exact, sigs = [], [], [], []
    with ShardWriter(os.path.join(out, f"{name}.jsonl"), "jsonl") as writer:
        for rec in process_shard(path, index, cfg):
            n += 1
            r = rec.doc.to_record()
            r["_key"] = rec.key
            writer.write(r)
            if rec.exact is not None:
                keys.append(rec.key)
                ids.append(rec.doc.id)
                exact.append(rec.exact)
                sigs.append(rec.signature)
    dd = cfg.dedup
    width = dd.num_perm if dd.near else 0
    ids_utf8 = [i.encode("utf-8", "surrogatepass") for i in ids]
    arrays = {"keys": np.asarray(keys, np.int64), "exact": np.asarray(exact, np.uint64),
              # ids as one UTF-8 blob + end offsets (a fixed-width array would pad to the longest)
              "id_bytes": np.frombuffer(b"".join(ids_utf8), np.uint8),
              "id_ends": np.cumsum([len(b) for b in ids_utf8], dtype=np.int64),
              "sigs": (np.stack(sigs).astype(np.uint32) if sigs and dd.near
                       else np.zeros((len(keys), width), np.uint32))}
    with atomic_open(os.path.join(out, f"{name}.dedup.npz"), "wb") as f:
        np.savez(f, **arrays)
    write_json(os.path.join(out, f"{name}.done"), {"records": n, "kept": len(keys)})
    return n


def _stage3(task: tuple[str, str, str, dict, dict]) -> int:
    name, work, output_dir, decisions, cfg = task  # decisions: this shard's, {str(key): [r, id]}
    fmt = cfg.output.format
    stats = report_lib.ShardStats()
    n = 0
    kept_path, drop_path = (os.path.join(output_dir, sub, name + output_suffix(fmt))
                            for sub in ("kept", "dropped"))
    with ShardWriter(kept_path, fmt) as kept_w, ShardWriter(drop_path, fmt) as drop_w:
        for rec in read_records(os.path.join(work, "stage1", f"{name}.jsonl")):
            n += 1
            key = rec.pop("_key")
            d = decisions.get(str(key))
            if d is not None and "drop_reason" not in rec:
                rec["drop_reason"] = f"dedup:{d[0]}"
                rec["metadata"]["duplicate_of"] = d[1]
            stats.add(rec)
            (drop_w if "drop_reason" in rec else kept_w).write(rec)
    write_json(os.path.join(work, "stage3", f"{name}.stats.json"), stats.to_json())
    write_json(os.path.join(work, "stage3", f"{name}.done"), {"records": n})
    return n


# ---------------------------------------------------------------- driver

class _Pool:
    """A lazily started pool of spawned workers shared by the stages (None: run inline)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: cf.ProcessPoolExecutor | None = None

    def map(self, fn: Callable, tasks: list, progress: Progress) -> None:
        if self.workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                progress.update(fn(t))
            return
        if self.pool is None:
            # spawn, not fork: the parent may hold JAX/BLAS threads.
            self.pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                               mp_context=multiprocessing.get_context("spawn"))
        futures = [self.pool.submit(fn, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                progress.update(fut.result())
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


def _job_fingerprint(files: list[str], cfg: FilterConfig) -> dict:
    inputs = [os.path.abspath(f) for f in files]
    stable = {k: v for k, v in cfg.to_dict().items() if k != "runner"}
    blob = json.dumps({"inputs": inputs, "config": stable}, sort_keys=True, default=str)
    return {"inputs": inputs, "config": stable, "sha256": hashlib.sha256(blob.encode()).hexdigest()}


def run_local(inputs: str | Iterable[str], output_dir: str, config=None,
              num_workers: int | None = None) -> dict[str, Any]:
    """Filters ``inputs`` into ``output_dir`` (resumable); returns the report dict.

    ``config``: a ``FilterConfig``, or a partial dict / ConfigDict of its sections (validated
    here, before any work); ``num_workers`` replaces ``runner.num_workers``."""
    cfg = FilterConfig.from_mapping(config)
    files = expand_inputs(inputs if isinstance(inputs, str) else list(inputs), tfds=False)
    names = shard_names(files)
    workers = num_workers if num_workers is not None else cfg.runner.num_workers
    show = cfg.runner.progress
    work = os.path.join(output_dir, "_work")
    for sub in ("stage1", "stage3"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    job_path = os.path.join(work, "job.json")
    fp = _job_fingerprint(files, cfg)
    claim_job_dir(job_path, fp, f"{output_dir} holds a run with other inputs or another config "
                  f"({job_path}); resume with the same arguments or use a new --output")

    # Temporary files of a killed run are incomplete by construction: remove them.
    for sub in ("kept", "dropped", os.path.join("_work", "stage1"), os.path.join("_work", "stage3"),
                "_work"):
        d = os.path.join(output_dir, sub)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if ".tmp-" in f:
                    os.remove(os.path.join(d, f))
    pool = _Pool(workers)
    try:
        return _run_stages(files, names, work, output_dir, cfg, pool, show)
    finally:
        pool.close()


def _run_stages(files, names, work, output_dir, cfg, pool, show):
    # Stage 1: filter every shard.
    todo = [(i, f, n, work, cfg) for i, (f, n) in enumerate(zip(files, names))
            if not os.path.exists(os.path.join(work, "stage1", f"{n}.done"))]
    prog = Progress("stage 1/3 filter", len(files), show)
    for _ in range(len(files) - len(todo)):
        prog.update(skipped=True)
    pool.map(_stage1, todo, prog)

    # Stage 2: global dedup.
    decisions_path = os.path.join(work, "dedup_decisions.json")
    if os.path.exists(decisions_path):
        decided = read_json(decisions_path)["decisions"]
    else:
        decided = _stage2(names, work, cfg, decisions_path, show)

    # Stage 3: write kept / dropped; each shard gets its own decisions (keys carry the shard).
    per_shard: list[dict] = [{} for _ in names]
    for k, d in decided.items():
        per_shard[int(k) >> KEY_SHARD_SHIFT][k] = d
    todo3 = [(n, work, output_dir, per_shard[i], cfg) for i, n in enumerate(names)
             if not os.path.exists(os.path.join(work, "stage3", f"{n}.done"))]
    prog = Progress("stage 3/3 write", len(names), show)
    for _ in range(len(names) - len(todo3)):
        prog.update(skipped=True)
    pool.map(_stage3, todo3, prog)

    stats = report_lib.ShardStats()
    for n in names:
        stats.merge(report_lib.ShardStats.from_json(
            read_json(os.path.join(work, "stage3", f"{n}.stats.json"))))
    return report_lib.write_report(stats, output_dir, cfg.to_dict())


def _stage2(names, work, cfg, decisions_path, show) -> dict[str, list]:
    """Clusters the kept documents of all shards; writes and returns ``{str(key): [reason, id
    of the kept copy]}``."""
    t0 = time.time()
    dd = cfg.dedup
    npz = [os.path.join(work, "stage1", f"{n}.dedup.npz") for n in names]
    keys, exact, sigs = [], [], []
    for path in npz:
        with np.load(path) as z:
            keys.append(z["keys"])
            exact.append(z["exact"])
            sigs.append(z["sigs"])
    keys_a = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    decisions: dict[int, tuple[str, int]] = {}
    if dd.exact or dd.near:
        sig_a = np.concatenate(sigs) if dd.near and keys else None
        decisions = cluster(keys_a.tolist(), np.concatenate(exact).tolist(), sig_a, dd)
    wanted = np.fromiter({rep for _, rep in decisions.values()}, np.int64)
    ids: dict[int, str] = {}
    for path, k in zip(npz, keys):
        hit = np.flatnonzero(np.isin(k, wanted))
        if hit.size:
            with np.load(path) as z:
                blob, ends = z["id_bytes"].tobytes(), z["id_ends"].tolist()
            for j in hit.tolist():
                start = ends[j - 1] if j else 0
                ids[int(k[j])] = blob[start:ends[j]].decode("utf-8", "surrogatepass")
    decided = {str(k): [r, ids.get(rep, str(rep))] for k, (r, rep) in decisions.items()}
    write_json(decisions_path, {"decisions": decided, "documents": int(keys_a.size)})
    if show:
        print(f"[filter] stage 2/3 dedup: {keys_a.size:,} docs, {len(decisions):,} duplicates, "
              f"{time.time() - t0:.1f}s", file=sys.stderr, flush=True)
    return decided


def read_output(output_dir: str, which: str = "kept") -> list[dict[str, Any]]:
    """All records of ``output_dir/<which>/`` in shard order (for tests and small jobs)."""
    d = os.path.join(output_dir, which)
    out = []
    for f in sorted(os.listdir(d)):
        if ".tmp-" not in f:
            out.extend(read_records(os.path.join(d, f)))
    return out
