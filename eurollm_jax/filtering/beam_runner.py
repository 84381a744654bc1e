"""The filtering pipeline on Apache Beam, for corpora that outgrow one machine.

Same steps and the same output as ``runner.run_local`` (byte-identical shard files: the
tests compare them with Beam's DirectRunner):

1. ``Create(shards)`` -> ``FlatMap(process_shard)``: each input shard is read and filtered
   on a worker (the per-document pipeline is built once per worker in ``DoFn.setup``);
2. dedup: every kept document emits its exact-key bucket and its LSH band buckets;
   ``GroupByKey`` -> per-bucket edges (``DedupConfig.edges``) -> one global union-find
   (``CombineGlobally``; the edge list is small next to the corpus) -> decisions as a side input;
3. ``GroupByKey(shard)`` -> sort by position -> write ``kept/<shard>.<fmt>`` and
   ``dropped/<shard>.<fmt>``, then a global combine of the per-language stats writes the report.

Run it on a cluster by passing Beam pipeline options, e.g. Dataflow::

    python -m launch.filter --config=configs/filter_default.py --runner=beam \\
        --input='gs://bucket/raw/*.jsonl.gz' --output=gs://bucket/filtered \\
        --beam_options='--runner=DataflowRunner --project=P --region=europe-west4
                        --temp_location=gs://bucket/tmp --requirements_file=req.txt'

(``--runner=FlinkRunner --flink_master=host:8081`` or ``--runner=SparkRunner
--spark_master_url=spark://host:7077`` likewise). Input and output paths must then be on a
shared filesystem the workers can reach (GCS/S3/HDFS through Beam's FileSystems for the
globs; the shard writer here uses local/POSIX paths, e.g. a mounted bucket).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from eurollm_jax.documents import ShardWriter, expand_inputs, output_suffix
from eurollm_jax.fileio import read_json, write_json
from eurollm_jax.filtering import report as report_lib
from eurollm_jax.filtering.dedup import decisions_from_edges
from eurollm_jax.filtering.config import FilterConfig
from eurollm_jax.filtering.pipeline import process_shard
from eurollm_jax.filtering.runner import shard_names


def _require_beam():
    try:
        import apache_beam as beam  # noqa: F401
    except ImportError as e:
        raise ImportError("the Beam runner needs `pip install apache-beam` "
                          "(the `beam` extra)") from e
    return beam


def run_beam(inputs: str | Iterable[str], output_dir: str, config=None,
             beam_args: list[str] | None = None) -> dict[str, Any]:
    """Runs the filtering job on Beam (DirectRunner unless ``beam_args`` say otherwise);
    ``config`` as for ``run_local`` (validated here, before the pipeline starts)."""
    beam = _require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    cfg = FilterConfig.from_mapping(config)
    files = expand_inputs(inputs if isinstance(inputs, str) else list(inputs), tfds=False)
    names = shard_names(files)
    dd = cfg.dedup
    fmt = cfg.output.format
    os.makedirs(output_dir, exist_ok=True)
    stats_path = os.path.join(output_dir, "_beam_stats.json")

    class FilterShard(beam.DoFn):
        def process(self, item):
            index, path, name = item
            for rec in process_shard(path, index, cfg):
                record = rec.doc.to_record()
                sig = (None if rec.signature is None
                       else np.asarray(rec.signature, np.uint32).tobytes())
                yield (name, rec.key, record, rec.exact, sig)

    def bucket_entries(row):
        name, key, record, exact, sig = row
        if "drop_reason" in record or exact is None:
            return
        yield from dd.buckets(key, exact, sig)

    def edges(kv):
        return dd.edges(*kv)

    class Decide(beam.CombineFn):
        def create_accumulator(self):
            return []

        def add_input(self, acc, edge):
            acc.append(tuple(edge))
            return acc

        def merge_accumulators(self, accs):
            return [e for a in accs for e in a]

        def extract_output(self, acc):
            return acc

    def decisions(edge_list, exact_pairs):
        return decisions_from_edges(edge_list, dict(exact_pairs))

    def apply_decision(row, dec, ids):
        name, key, record, exact, sig = row
        d = dec.get(key)
        if d is not None and "drop_reason" not in record:
            record["drop_reason"] = f"dedup:{d[0]}"
            record["metadata"]["duplicate_of"] = ids.get(d[1], str(d[1]))
        return name, (key, record)

    def write_shard(kv):
        name, items = kv
        items = sorted(items, key=lambda kr: kr[0])
        stats = report_lib.ShardStats()
        kept_path, drop_path = (os.path.join(output_dir, sub, name + output_suffix(fmt))
                                for sub in ("kept", "dropped"))
        with ShardWriter(kept_path, fmt) as kept_w, ShardWriter(drop_path, fmt) as drop_w:
            for _, rec in items:
                stats.add(rec)
                (drop_w if "drop_reason" in rec else kept_w).write(rec)
        return stats.to_json()

    class MergeStats(beam.CombineFn):
        def create_accumulator(self):
            return report_lib.ShardStats().to_json()

        def add_input(self, acc, s):
            a = report_lib.ShardStats.from_json(acc)
            a.merge(report_lib.ShardStats.from_json(s))
            return a.to_json()

        def merge_accumulators(self, accs):
            a = report_lib.ShardStats()
            for x in accs:
                a.merge(report_lib.ShardStats.from_json(x))
            return a.to_json()

        def extract_output(self, acc):
            return acc

    def save_stats(s):
        write_json(stats_path, s)

    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    with beam.Pipeline(options=options) as p:
        rows = (p | "Shards" >> beam.Create(list(zip(range(len(files)), files, names)))
                | "Reshuffle" >> beam.Reshuffle()
                | "Filter" >> beam.ParDo(FilterShard()))
        kept_rows = rows | "KeptOnly" >> beam.Filter(lambda r: "drop_reason" not in r[2]
                                                     and r[3] is not None)
        edge_list = (rows | "Buckets" >> beam.FlatMap(bucket_entries)
                     | "GroupBuckets" >> beam.GroupByKey()
                     | "Edges" >> beam.FlatMap(edges)
                     | "AllEdges" >> beam.CombineGlobally(Decide()))
        exact_pairs = kept_rows | "ExactKeys" >> beam.Map(lambda r: (r[1], int(r[3])))
        dec = (edge_list | "Decide" >> beam.Map(decisions, beam.pvalue.AsList(exact_pairs)))
        reps = (dec | "Reps" >> beam.FlatMap(lambda d: [(rep, None) for _, rep in d.values()]))
        ids = ({"rep": reps, "row": kept_rows | "ById" >> beam.Map(lambda r: (r[1], r[2]["id"]))}
               | "JoinIds" >> beam.CoGroupByKey()
               | "RepIds" >> beam.FlatMap(lambda kv: [(kv[0], kv[1]["row"][0])]
                                          if kv[1]["rep"] and kv[1]["row"] else []))
        stats = (rows | "Apply" >> beam.Map(apply_decision, beam.pvalue.AsSingleton(dec),
                                            beam.pvalue.AsDict(ids))
                 | "ByShard" >> beam.GroupByKey()
                 | "Write" >> beam.Map(write_shard)
                 | "Stats" >> beam.CombineGlobally(MergeStats()))
        _ = stats | "SaveStats" >> beam.Map(save_stats)

    stats = report_lib.ShardStats.from_json(read_json(stats_path))
    os.remove(stats_path)
    return report_lib.write_report(stats, output_dir, cfg.to_dict())
