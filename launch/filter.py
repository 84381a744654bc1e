"""Filter web documents, annotate them with an LLM, or train the EuroFilter classifier.

  # language ID, heuristics, PII, dedup (+ classifier when configured); resumable
  python -m launch.filter --config=configs/filter_default.py --input='raw/*.jsonl.gz' --output=out/
  python -m launch.filter --config=configs/filter_default.py --runner=beam --input=... --output=...

  # EuroFilter: grade documents 0-5 with an instruct LLM (OpenAI-compatible server or in-process)
  python -m launch.filter --job=annotate --config=configs/filter_annotate.py \
      --input='out/kept/*.jsonl.gz' --output=ann/ --config.annotate.base_url=http://127.0.0.1:8000
  # train the classifier on the annotations, then filter with it
  python -m launch.filter --job=train_classifier --config=configs/filter_classifier.py \
      --input=ann/annotations.jsonl --output=clf/
  python -m launch.filter --config=configs/filter_eurofilter.py --config.quality.model_dir=clf/ ...

Kept documents go to OUTPUT/kept/, dropped ones to OUTPUT/dropped/ (with ``drop_reason``),
the per-language report to OUTPUT/report.{json,md,csv,png}. The config (a configs/filter_*.py
file plus ``--config.section.field=value`` overrides) is validated once at start-up against
``eurollm_jax.filtering.config.FilterJobConfig``: a bad value is an error naming the field.
The logic lives in eurollm_jax/filtering/; this file only parses flags.
"""

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/filter_default.py", "filter job config")
flags.DEFINE_string("input", None, "input glob(s), comma-separated")
flags.DEFINE_string("output", None, "output directory")
flags.DEFINE_enum("job", "filter", ["filter", "annotate", "train_classifier"], "what to run")
flags.DEFINE_enum("runner", "local", ["local", "beam"], "local processes or Apache Beam")
flags.DEFINE_integer("num_workers", None, "local worker processes (default: "
                     "config.runner.num_workers)")
flags.DEFINE_string("beam_options", "--runner=DirectRunner", "Beam pipeline options")
flags.mark_flags_as_required(["input", "output"])


def run_filter(job) -> int:
    from eurollm_jax.filtering import run_local

    config = job.run_config()
    if FLAGS.runner == "beam":
        import shlex

        from eurollm_jax.filtering.beam_runner import run_beam

        report = run_beam(FLAGS.input, FLAGS.output, config, shlex.split(FLAGS.beam_options))
    else:
        report = run_local(FLAGS.input, FLAGS.output, config, FLAGS.num_workers)
    print(f"{report['documents']:,} documents: {report['kept']:,} kept, {report['dropped']:,} dropped")
    for step, n in report["dropped_by_step"].items():
        print(f"  {step}: {n:,}")
    print(f"report: {os.path.join(FLAGS.output, 'report.md')}")
    return 0


def run_annotate(job) -> int:
    from eurollm_jax.documents import expand_inputs
    from eurollm_jax.filtering.annotate import InProcessClient, OpenAIClient, annotate
    from eurollm_jax.filtering.io import read_documents

    a = job.annotate
    a.check_backend("annotate")
    if a.backend == "http":
        client = OpenAIClient(a.base_url, a.model, mode=a.mode, api_key=a.api_key or None,
                              max_tokens=a.max_new_tokens, concurrency=a.concurrency)
    else:
        from eurollm_jax.inference import load_for_inference

        model, tok = load_for_inference(a.checkpoint or None, preset=a.preset or None,
                                        tokenizer=a.tokenizer or None)
        if tok is None:
            raise SystemExit("the in-process annotator needs a tokenizer: "
                             "--config.annotate.tokenizer=<tokenizer.model>")
        client = InProcessClient(model, tok, max_new_tokens=a.max_new_tokens,
                                 batch_size=a.batch_size)

    def docs():
        n = 0
        for path in expand_inputs(FLAGS.input):
            for d in read_documents(path, job.input):
                if d.drop_reason is None:
                    yield d
                    n += 1
                    if a.limit and n >= a.limit:
                        return

    out = os.path.join(FLAGS.output, "annotations.jsonl")
    stats = annotate(docs(), client, out, batch_size=a.batch_size, progress=True)
    print(json.dumps(stats), f"-> {out}")
    return 0


def run_train_classifier(job) -> int:
    import random

    from eurollm_jax.documents import expand_inputs
    from eurollm_jax.filtering.annotate import read_annotations
    from eurollm_jax.filtering.classifier import evaluate, save_classifier, train_classifier

    c = job.classifier
    records = [r for p in expand_inputs(FLAGS.input) for r in read_annotations(p)]
    if len(records) < 10:
        raise SystemExit(f"only {len(records)} scored annotations in {FLAGS.input}; need >= 10")
    random.Random(c.seed).shuffle(records)
    n_test = max(1, int(len(records) * c.test_fraction))
    test, train = records[:n_test], records[n_test:]
    model = train_classifier([r["text"] for r in train], [r["score"] for r in train],
                             c.model_config(), steps=c.steps, batch_size=c.batch_size,
                             learning_rate=c.learning_rate, weight_decay=c.weight_decay,
                             log_every=max(1, c.steps // 10))
    metrics = evaluate(model, [r["text"] for r in test], [r["score"] for r in test])
    metrics.update(train_documents=len(train), test_documents=len(test))
    save_classifier(model, FLAGS.output, metrics)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
    print(f"classifier: {FLAGS.output}")
    return 0


def main(argv):
    del argv
    from eurollm_jax.filtering.config import FilterJobConfig
    from eurollm_jax.schema import ConfigError

    jobs = {"filter": run_filter, "annotate": run_annotate,
            "train_classifier": run_train_classifier}
    try:
        job = FilterJobConfig.from_mapping(FLAGS.config)  # validated once, before any work
        return jobs[FLAGS.job](job)
    except ConfigError as e:
        raise SystemExit(f"bad --config: {e}") from e


if __name__ == "__main__":
    sys.exit(app.run(main))
