"""The generation job runner: local (inline or multi-process), resumable; the shared pieces the
Beam runner (``beam_runner``) reuses, so both produce the same files.

A job (``Job``): the config, the pipeline, the seed records, the ``plan`` and the steps cut into
segments (``steps.segments``): runs of record steps, applied shard by shard (``shard_size``
records), and global steps, applied once to every record in job order. Work files:

- ``_work/job.json``: the config's output-relevant settings, the seeds' hash and the plan; a
  rerun with other settings or seeds in the same directory is refused;
- ``_work/seg<NN>/shard-<NNNNN>.json`` (record segments) and ``_work/seg<NN>/global.json``
  (global steps): the unit's kept records, dropped records (with ``drop_step``,
  ``drop_reason`` and the audit of raw LLM answers), counters and LLM usage, written
  atomically: a file that exists is finished work and is never redone;
- ``_work/llm_cache/``: the LLM client's persistent cache (``eurollm_jax.llm``): a unit killed
  midway is redone, but every request it had finished comes from the cache, so a killed and
  rerun job sends no finished request twice and writes what an uninterrupted run writes.

Outputs (``write_outputs``): ``sft/part-<NNNNN>.jsonl`` (SFT records, schema-checked with
``eurollm_jax.data.sft.validate_sft_record``; metadata keys kept), ``audit/part-<NNNNN>.jsonl``
(``{"id", "audit"}`` per SFT record: the raw LLM outputs next to the results), ``dropped.jsonl``
and ``report.json`` / ``report.md`` (per-step counters with drop reasons, SFT records per
language or task, LLM usage, the plan).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import time
from typing import Any, Iterable

from eurollm_jax.documents import expand_inputs, input_stem, open_binary
from eurollm_jax.fileio import claim_job_dir, read_json, write_json, write_text
from eurollm_jax.synthesis.config import SynthesisConfig
from eurollm_jax.synthesis.pipelines import SeedError, get_pipeline
from eurollm_jax.synthesis.steps import (
    Counters,
    StepContext,
    require_unique_ids,
    run_steps,
    segments,
)


def as_config(config) -> SynthesisConfig:
    return config if isinstance(config, SynthesisConfig) else SynthesisConfig.from_mapping(config)


# ----------------------------------------------------------------------------- seeds
def read_seeds(cfg: SynthesisConfig, pipeline) -> list[dict]:
    """The job's seed records, validated (``SeedError`` names the file, the line and the fix)."""
    if not cfg.job.seeds:
        raise SeedError("job.seeds is empty: give the seed JSONL file(s), e.g. "
                        "--config.job.seeds=seeds.jsonl")
    out = []
    for path in expand_inputs(cfg.job.seeds, tfds=False):
        stem = input_stem(path)
        with open_binary(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    raw = json.loads(line)
                except ValueError as e:
                    raise SeedError(f"seed {where}: not valid JSON ({e}); one JSON object per "
                                    f"line; {pipeline.hint}") from None
                if not isinstance(raw, dict):
                    raise SeedError(f"seed {where}: expected a JSON object; {pipeline.hint}")
                rid = raw.get("id")
                rid = str(rid) if rid not in (None, "") else f"{stem}:{n}"
                out.append(pipeline.seed_record(raw, rid, where))
    if not out:
        raise SeedError(f"no seeds in {cfg.job.seeds}")
    require_unique_ids(out, f"seeds {cfg.job.seeds}")
    return out


@dataclasses.dataclass
class Job:
    """A job's fixed parts (module docstring); ``make_job`` builds it from a config."""

    cfg: SynthesisConfig
    seeds: list[dict]
    plan: dict

    def __post_init__(self):
        self.pipeline = get_pipeline(self.cfg)
        self.segments = segments(self.pipeline.steps(self.plan))

    def fingerprint(self) -> dict:
        seeds = hashlib.sha256(json.dumps(self.seeds, sort_keys=True).encode()).hexdigest()
        body = {"settings": self.cfg.job_settings(), "seeds_sha256": seeds, "plan": self.plan}
        blob = json.dumps(body, sort_keys=True, default=str).encode()
        return dict(body, sha256=hashlib.sha256(blob).hexdigest())

    def shards(self, records: list[dict]) -> list[list[dict]]:
        n = self.cfg.runner.shard_size
        return [records[i:i + n] for i in range(0, len(records), n)]

    def steps_of(self, seg: int):
        return self.segments[seg][1]


def make_job(config) -> Job:
    cfg = as_config(config)
    pipeline = get_pipeline(cfg)
    seeds = read_seeds(cfg, pipeline)
    return Job(cfg, seeds, pipeline.plan(seeds))


# ----------------------------------------------------------------------------- LLM
def make_client(cfg: SynthesisConfig, cache_dir: str | None):
    """The job's ``LLMClient`` from its [llm] section (cache in ``cache_dir``)."""
    from eurollm_jax.llm import LLMClient

    s = cfg.llm
    s.check_backend("llm")
    cache_dir = s.cache_dir or cache_dir
    if s.backend == "http":
        return LLMClient.from_endpoint(s.base_url, s.model, api_key=s.api_key or None,
                                       concurrency=s.concurrency, timeout=s.timeout,
                                       max_retries=s.max_retries, cache_dir=cache_dir)
    from eurollm_jax.inference import Engine, load_for_inference

    model, tok = load_for_inference(s.checkpoint or None, preset=s.preset or None,
                                    tokenizer=s.tokenizer or None)
    if tok is None:
        raise ValueError("llm.backend=engine needs a tokenizer: --config.llm.tokenizer="
                         "<tokenizer.model> (or a checkpoint directory holding one)")
    return LLMClient.from_engine(Engine(model, tok), model_name=s.model, cache_dir=cache_dir)


def _usage_delta(before: dict, after: dict) -> dict:
    out = {k: after[k] - before[k] for k in ("requests", "cached", "prompt_tokens",
                                               "completion_tokens")}
    out["errors"] = {k: v - before["errors"].get(k, 0) for k, v in after["errors"].items()
                     if v - before["errors"].get(k, 0)}
    return out


def _usage_sum(usages: Iterable[dict]) -> dict:
    total = {"requests": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0,
             "errors": {}}
    for u in usages:
        for k in ("requests", "cached", "prompt_tokens", "completion_tokens"):
            total[k] += u.get(k, 0)
        for k, v in u.get("errors", {}).items():
            total["errors"][k] = total["errors"].get(k, 0) + v
    return total


def run_unit(job: Job, seg: int, records: list[dict], client) -> dict:
    """One unit of work: the steps of segment ``seg`` over ``records`` ->
    ``{"records", "dropped", "counters", "usage"}`` (what a work file holds)."""
    ctx = StepContext(client)
    before = client.usage if client is not None else None
    kept = run_steps(job.steps_of(seg), records, ctx)
    usage = _usage_delta(before, client.usage) if client is not None else _usage_sum([])
    unit = {"records": kept, "dropped": ctx.dropped, "counters": ctx.counters.to_json(),
            "usage": usage}
    # JSON-native from here on: a unit read back from its work file equals the fresh one
    return json.loads(json.dumps(unit, ensure_ascii=False))


# ----------------------------------------------------------------------------- outputs
def _lines(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def write_outputs(job: Job, units: list[dict], output_dir: str, elapsed_s: float = 0.0,
                  this_run: list[dict] | None = None) -> dict:
    """The job's output files from its finished units (in job order: segment, then shard);
    the last segment's records are the results. Returns the report: its ``llm`` usage is the
    whole job's (every unit's, whichever run made it), ``llm_this_run`` that of the units
    ``this_run`` computed (all of them when not given)."""
    from eurollm_jax.data.sft import SFTRecordError, validate_sft_record

    counters = Counters()
    dropped = []
    for u in units:
        counters.merge(u["counters"])
        dropped.extend(u["dropped"])
    last = len(job.segments) - 1
    final = [r for u in units if u["seg"] == last for r in u["records"]]
    sft, audits = [], []
    schema = counters.step("sft_schema")
    schema["in"] += len(final)
    for r in final:
        rec = job.pipeline.to_sft(r)
        try:
            validate_sft_record(rec, where=f"id {rec['id']}")
        except SFTRecordError as e:
            dropped.append(dict(r, drop_step="sft_schema", drop_reason="invalid_sft_record",
                                schema_error=str(e)))
            counters.drop("sft_schema", "invalid_sft_record")
            continue
        sft.append(rec)
        audits.append({"id": rec["id"], "audit": r.get("audit", [])})
    schema["out"] += len(sft)
    per = job.cfg.runner.records_per_file
    for sub, rows in (("sft", sft), ("audit", audits)):
        os.makedirs(os.path.join(output_dir, sub), exist_ok=True)
        for old in os.listdir(os.path.join(output_dir, sub)):
            if old.startswith("part-"):
                os.remove(os.path.join(output_dir, sub, old))
        for k in range(max(1, -(-len(rows) // per))):
            write_text(os.path.join(output_dir, sub, f"part-{k:05d}.jsonl"),
                       _lines(rows[k * per:(k + 1) * per]))
    write_text(os.path.join(output_dir, "dropped.jsonl"), _lines(dropped))
    groups: dict[str, int] = {}
    for rec in sft:
        g = job.pipeline.group_of(rec)
        groups[g] = groups.get(g, 0) + 1
    reasons: dict[str, int] = {}
    for d in dropped:
        key = f"{d['drop_step']}:{d['drop_reason']}"
        reasons[key] = reasons.get(key, 0) + 1
    report = {"pipeline": job.cfg.job.pipeline, "source": job.cfg.job.source_name,
              "seeds": len(job.seeds), "sft_records": len(sft), "dropped": len(dropped),
              "per_group": dict(sorted(groups.items())), "steps": counters.to_json(),
              "drop_reasons": dict(sorted(reasons.items())), "plan": job.plan,
              "llm": _usage_sum(u["usage"] for u in units),
              "llm_this_run": _usage_sum(u["usage"] for u in (units if this_run is None
                                                               else this_run)),
              "elapsed_s": round(elapsed_s, 3)}
    write_json(os.path.join(output_dir, "report.json"), report)
    write_text(os.path.join(output_dir, "report.md"), report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [f"# Synthesis report: {report['pipeline']}", "",
             f"{report['seeds']} seeds -> {report['sft_records']} SFT records "
             f"(source `{report['source']}`), {report['dropped']} dropped.", "",
             "| step | in | out | dropped (reason: n) |", "|---|---|---|---|"]
    for name, c in report["steps"].items():
        reasons = ", ".join(f"{k}: {v}" for k, v in c["dropped"].items()) or "-"
        lines.append(f"| {name} | {c['in']} | {c['out']} | {reasons} |")
    lines += ["", "| group | SFT records |", "|---|---|"]
    lines += [f"| {g} | {n} |" for g, n in report["per_group"].items()]
    u = report["llm"]
    lines += ["", f"LLM (whole job): {u['requests']} requests sent, {u['cached']} answered from "
              f"the cache, {u['prompt_tokens']} prompt / {u['completion_tokens']} completion "
              f"tokens, errors {u['errors'] or 'none'}; this run sent "
              f"{report['llm_this_run']['requests']}.", ""]
    return "\n".join(lines)


def read_sft_output(output_dir: str) -> list[dict]:
    """The SFT records a job wrote, in order."""
    d = os.path.join(output_dir, "sft")
    out = []
    for name in sorted(os.listdir(d)):
        if name.startswith("part-") and name.endswith(".jsonl"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                out.extend(json.loads(line) for line in f if line.strip())
    return out


# ----------------------------------------------------------------------------- progress
class Progress:
    """``[synthesis] <stage>: done/total units, records, records/s, ETA, LLM counts`` lines."""

    def __init__(self, stage: str, total: int, enabled: bool = True):
        self.stage, self.total, self.enabled = stage, total, enabled
        self.done = self.records = self.requests = self.cached = 0
        self.t0 = time.time()

    def update(self, unit: dict, records_in: int, skipped: bool = False) -> None:
        self.done += 1
        self.records += records_in
        self.requests += unit["usage"]["requests"]
        self.cached += unit["usage"]["cached"]
        if not self.enabled:
            return
        dt = max(time.time() - self.t0, 1e-9)
        eta = (self.total - self.done) * dt / max(self.done, 1)
        note = " (already done)" if skipped else ""
        print(f"[synthesis] {self.stage}: {self.done}/{self.total} units, {self.records:,} "
              f"records, {self.records / dt:,.1f} records/s, ETA {eta:,.0f}s, LLM "
              f"{self.requests:,} sent / {self.cached:,} cached{note}", file=sys.stderr,
              flush=True)


# ----------------------------------------------------------------------------- local runner
_WORKER: dict[str, Any] = {}


def _worker_unit(task) -> dict:
    """A spawned worker's unit: the job and its client are built once per process."""
    cfg_dict, seeds, plan, seg, records, cache_dir, path = task
    if _WORKER.get("key") != (json.dumps(cfg_dict, sort_keys=True), cache_dir):
        cfg = SynthesisConfig.from_mapping(cfg_dict)
        _WORKER.update(key=(json.dumps(cfg_dict, sort_keys=True), cache_dir),
                       job=Job(cfg, seeds, plan), client=None)
    job = _WORKER["job"]
    if _WORKER["client"] is None and any(getattr(s, "calls", None) for s in job.steps_of(seg)):
        _WORKER["client"] = make_client(job.cfg, cache_dir)
    unit = run_unit(job, seg, records, _WORKER["client"])
    write_json(path, unit, sort_keys=False)
    return unit


def run_local(config, output_dir: str, *, client=None, num_workers: int | None = None) -> dict:
    """Runs a synthesis job into ``output_dir`` (resumable; module docstring); returns the report.

    ``client``: an ``LLMClient`` to use instead of the [llm] section's (the job then runs in
    this process); otherwise ``runner.num_workers`` (or ``num_workers``) processes each build
    their own client from [llm], sharing the cache directory."""
    t0 = time.time()
    job = make_job(config)
    cfg = job.cfg
    work = os.path.join(output_dir, "_work")
    os.makedirs(work, exist_ok=True)
    fp = job.fingerprint()
    job_path = os.path.join(work, "job.json")
    claim_job_dir(job_path, fp, f"{output_dir} holds a job with other settings or seeds "
                  f"({job_path}); rerun with the same config and seeds, or use a new output "
                  f"directory")
    for d, _, files in os.walk(work):  # temporary files of a killed run are incomplete
        for f in files:
            if f.startswith(".tmp-"):
                os.remove(os.path.join(d, f))
    cache_dir = cfg.llm.cache_dir or os.path.join(work, "llm_cache")
    workers = num_workers if num_workers is not None else cfg.runner.num_workers
    own_client = None
    needs_llm = any(hasattr(s, "calls") for _, steps in job.segments for s in steps)
    if client is None and needs_llm and workers <= 1:
        client = own_client = make_client(cfg, cache_dir)
    pool = None
    units: list[dict] = []
    fresh: list[dict] = []  # the units this run computed
    try:
        records = job.seeds
        for seg, (scope, steps) in enumerate(job.segments):
            seg_dir = os.path.join(work, f"seg{seg:02d}")
            os.makedirs(seg_dir, exist_ok=True)
            stage = f"{seg + 1}/{len(job.segments)} {'+'.join(s.name for s in steps)}"
            if scope == "global":
                path = os.path.join(seg_dir, "global.json")
                prog = Progress(stage, 1, cfg.runner.progress)
                if os.path.exists(path):
                    unit = read_json(path)
                    prog.update(unit, len(records), skipped=True)
                else:
                    unit = run_unit(job, seg, records, None)
                    write_json(path, unit, sort_keys=False)
                    fresh.append(unit)
                    prog.update(unit, len(records))
                unit["seg"], unit["shard"] = seg, 0
                units.append(unit)
                records = unit["records"]
                continue
            shards = job.shards(records)
            prog = Progress(stage, len(shards), cfg.runner.progress)
            results: list[dict | None] = [None] * len(shards)
            todo = []
            for j, shard in enumerate(shards):
                path = os.path.join(seg_dir, f"shard-{j:05d}.json")
                if os.path.exists(path):
                    results[j] = read_json(path)
                    prog.update(results[j], len(shard), skipped=True)
                else:
                    todo.append((j, shard, path))
            if client is not None or workers <= 1 or len(todo) <= 1:
                if client is None and todo and needs_llm:
                    client = own_client = make_client(cfg, cache_dir)
                for j, shard, path in todo:
                    unit = run_unit(job, seg, shard, client)
                    write_json(path, unit, sort_keys=False)
                    results[j] = unit
                    fresh.append(unit)
                    prog.update(unit, len(shard))
            else:
                if pool is None:  # spawn, not fork: the parent may hold JAX/BLAS threads
                    pool = cf.ProcessPoolExecutor(
                        max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
                cfg_dict = cfg.to_dict()
                futures = {pool.submit(_worker_unit, (cfg_dict, job.seeds, job.plan, seg, shard,
                                                      cache_dir, path)): (j, len(shard))
                           for j, shard, path in todo}
                for fut in cf.as_completed(futures):
                    j, n = futures[fut]
                    results[j] = fut.result()
                    fresh.append(results[j])
                    prog.update(results[j], n)
            for j, unit in enumerate(results):
                unit["seg"], unit["shard"] = seg, j
                units.append(unit)
            records = [r for unit in results for r in unit["records"]]
        return write_outputs(job, units, output_dir, time.time() - t0, fresh)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if own_client is not None:
            own_client.close()
