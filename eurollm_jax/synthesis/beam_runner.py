"""A synthesis job on Apache Beam: the same units, steps and output writer as ``runner.run_local``,
so the files are the same (the tests compare them with Beam's DirectRunner).

Per segment of the job (``runner.Job.segments``):

- record steps: ``(shard index, records)`` -> ``ParDo(RunShard)``: each worker builds the job
  and its LLM client once (``DoFn.setup``; the client's cache directory is shared, so a
  rerun sends no finished request again) and runs ``runner.run_unit`` on the shard;
- a global step: every record of the previous segment, gathered in job order (sorted by shard
  index), in one ``run_unit`` call, then re-cut into shards for the next segment.

Every unit is tagged ``(segment, shard)``; at the end the units are gathered, sorted and handed
to ``runner.write_outputs``. LLM calls, the expensive part, run on the workers; the final write
runs once (SFT sets are small next to a pre-training corpus).

On a cluster pass Beam options (``--beam_options='--runner=DataflowRunner --project=...'``);
the seed files, the output directory and the cache directory must then be on a filesystem
every worker reaches (the writer uses local/POSIX paths, e.g. a mounted bucket), and the
[llm] endpoint must be reachable from the workers.
"""

from __future__ import annotations

import os
import time

from eurollm_jax.synthesis.runner import (
    Job,
    as_config,
    make_client,
    make_job,
    run_unit,
    write_outputs,
)


def _require_beam():
    try:
        import apache_beam as beam
    except ImportError as e:
        raise ImportError("the Beam runner needs apache-beam: "
                          "pip install 'eurollm_jax[beam]'") from e
    return beam


def run_beam(config, output_dir: str, beam_args: list[str] | None = None) -> dict:
    """Runs a synthesis job on Beam (DirectRunner unless ``beam_args`` say otherwise);
    returns the report. The config is validated and the seeds read here, before the pipeline
    starts."""
    beam = _require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    t0 = time.time()
    job = make_job(config)
    cfg_dict, seeds, plan = job.cfg.to_dict(), job.seeds, job.plan
    cache_dir = job.cfg.llm.cache_dir or os.path.join(output_dir, "_work", "llm_cache")
    os.makedirs(cache_dir, exist_ok=True)

    def rebuild() -> Job:
        return Job(as_config(cfg_dict), seeds, plan)

    class RunShard(beam.DoFn):
        def __init__(self, seg: int):
            self.seg = seg

        def setup(self):
            self.job = rebuild()
            needs_llm = any(hasattr(s, "calls") for s in self.job.steps_of(self.seg))
            self.client = make_client(self.job.cfg, cache_dir) if needs_llm else None

        def process(self, item):
            shard, records = item
            unit = run_unit(self.job, self.seg, records, self.client)
            yield dict(unit, seg=self.seg, shard=shard)

        def teardown(self):
            if getattr(self, "client", None) is not None:
                self.client.close()

    def run_global(units, seg):
        units = sorted(units, key=lambda u: u["shard"])
        records = [r for u in units for r in u["records"]]
        return dict(run_unit(rebuild(), seg, records, None), seg=seg, shard=0)

    def reshard(unit):
        return list(enumerate(job.shards(unit["records"])))

    def finish(units):
        units = sorted(units, key=lambda u: (u["seg"], u["shard"]))
        write_outputs(rebuild(), units, output_dir, time.time() - t0)

    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    with beam.Pipeline(options=options) as p:
        shards = (p | "Seeds" >> beam.Create(list(enumerate(job.shards(seeds))))
                  | "Reshuffle0" >> beam.Reshuffle())
        all_units = []
        previous = None  # the last global unit (a single-element PCollection)
        for seg, (scope, steps) in enumerate(job.segments):
            label = f"S{seg}_{'+'.join(s.name for s in steps)}"
            if scope == "record":
                if previous is not None:
                    shards = (previous | f"Reshard{seg}" >> beam.FlatMap(reshard)
                              | f"Reshuffle{seg}" >> beam.Reshuffle())
                units = shards | label >> beam.ParDo(RunShard(seg))
                previous = None
            else:
                source = units if previous is None else previous
                units = (source | f"Gather{seg}" >> beam.combiners.ToList()
                         | label >> beam.Map(run_global, seg))
                previous = units
            all_units.append(units)
        _ = (all_units | "AllUnits" >> beam.Flatten()
             | "Collect" >> beam.combiners.ToList()
             | "Write" >> beam.Map(finish))
    from eurollm_jax.fileio import read_json

    return read_json(os.path.join(output_dir, "report.json"))
