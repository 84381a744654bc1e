"""Write the release artefacts of a trained, exported checkpoint: model card, datasheet, energy.

  python -m launch.release --workdir=WORKDIR --export=HF_DIR --output=OUT \
      [--config=configs/release_demo.py] [--config.registry=REGISTRY_DIR] [--config.energy.region=FR]

WORKDIR is the trainer's workdir (config.json, metrics.jsonl, run_records.jsonl) or a
directory holding it as train/ (the demo's layout); HF_DIR the exported Hugging Face
directory that is published. OUT gets README.md (the card), DATASHEET.md, energy.json and
release.json. Evaluation results are accepted only if the registry recorded them on the
exact exported weights; stale ones stop the release with a message naming them. Missing
declarations are printed as warnings and shown in the card. The logic lives in
eurollm_jax/release/; this file only parses flags.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/release_default.py", "release declarations")
flags.DEFINE_string("workdir", None, "the training workdir")
flags.DEFINE_string("export", None, "the exported Hugging Face directory being released")
flags.DEFINE_string("output", None, "where README.md, DATASHEET.md, energy.json, release.json go")
flags.mark_flags_as_required(["workdir", "export", "output"])


def main(argv) -> int:
    del argv
    from eurollm_jax.release import ReleaseConfig, StaleResultsError, build_release
    from eurollm_jax.schema import ConfigError

    try:
        config = ReleaseConfig.from_mapping(FLAGS.config)
        result = build_release(FLAGS.workdir, FLAGS.export, FLAGS.output, config)
    except (StaleResultsError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"release refused: {e}", file=sys.stderr)
        return 2
    for w in result.warnings:
        print(f"WARNING: {w}")
    print(f"model card: {result.card} ({result.eval_results} evaluation results, "
          f"{result.co2_g:.4g} g CO2e)")
    print(f"datasheet: {result.datasheet}")
    print(f"energy: {result.energy}; facts: {result.facts}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
