"""Synthesize SFT data with an LLM: EuroBlocks, XL-Instruct or context synthesis.

  python -m launch.serve --checkpoint=ckpt/ --port=8000 &       # or vLLM, or a hosted API
  python -m launch.synthesize --config=configs/synthesis_euroblocks.py --output=out/eb \
      --config.job.seeds=seeds.jsonl --config.llm.base_url=http://127.0.0.1:8000
  python -m launch.synthesize ... --runner=beam --beam_options='--runner=DirectRunner'
  python -m launch.train --config=configs/sft_tiny.py --config.data.sft_file=out/eb/sft ...

The job is resumable: run the same command again after a kill; finished work units are kept
and the LLM cache (OUTPUT/_work/llm_cache) answers every request that had finished. The config
is validated once at start-up (``eurollm_jax.synthesis.config.SynthesisConfig``); the logic
lives in eurollm_jax/synthesis/.
"""

import json
import shlex
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/synthesis_euroblocks.py", "synthesis job config")
flags.DEFINE_string("output", None, "output directory")
flags.DEFINE_enum("runner", "local", ["local", "beam"], "local processes or Apache Beam")
flags.DEFINE_integer("num_workers", None, "local worker processes (default: "
                     "config.runner.num_workers)")
flags.DEFINE_string("beam_options", "--runner=DirectRunner", "Beam pipeline options")
flags.mark_flags_as_required(["output"])


def main(argv):
    del argv
    from eurollm_jax.schema import ConfigError
    from eurollm_jax.synthesis import SeedError, SynthesisConfig

    try:
        cfg = SynthesisConfig.from_mapping(FLAGS.config)
        cfg.llm.check_backend("llm")
    except (ConfigError, SeedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if FLAGS.runner == "beam":
            from eurollm_jax.synthesis.beam_runner import run_beam

            report = run_beam(cfg, FLAGS.output, shlex.split(FLAGS.beam_options))
        else:
            from eurollm_jax.synthesis import run_local

            report = run_local(cfg, FLAGS.output, num_workers=FLAGS.num_workers)
    except (SeedError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("pipeline", "seeds", "sft_records", "dropped",
                                             "per_group", "drop_reasons")}, indent=1))
    print(f"report: {FLAGS.output}/report.md")
    return 0


if __name__ == "__main__":
    app.run(main)
