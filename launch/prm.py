"""``python -m launch.prm train|score|best_of_n [flags]``: multilingual process reward models.

  train      --config=configs/prm_multi.py --workdir=DIR [--config.prm.train_data=FILES ...]
             render the step-labelled data (loss at the step tags only) and train the PRM
             with the trainer (resumes on rerun); DIR/params is the PRM.
  score      --prm=PARAMS_DIR --input=FILES --output=OUT.jsonl [--aggregate=min]
             per-step probabilities and solution scores of JSON-lines solutions.
  best_of_n  --generator=DIR --prm=DIR (--mgsm=PATH | --math500=PATH) --out=DIR
             [--languages=en,de --n=16 --temperature=0.7 --aggregate=min]
             with --config (a PRM job config), its prm.format, prm.aggregate and
             prm.test_languages are used unless --languages / --aggregate are given.
             sample N solutions per question, score them, report PRM best-of-N, majority
             vote and PRM-weighted vote per language as a function of N (JSON, table, plot).

The logic lives in ``eurollm_jax.prm`` (see docs/prm.md).
"""

import json
import logging
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "PRM job config (configs/prm_*.py)")
_WORKDIR = flags.DEFINE_string("workdir", None, "train: run directory")
_PRM = flags.DEFINE_string("prm", None, "score / best_of_n: the PRM's params (or HF) directory")
_GENERATOR = flags.DEFINE_string("generator", None, "best_of_n: the generator's directory")
_TOKENIZER = flags.DEFINE_string("tokenizer", None, "tokenizer.model (default: the model "
                                 "directory's, else byte-level)")
_INPUT = flags.DEFINE_string("input", None, "score: JSON-lines solutions")
_OUTPUT = flags.DEFINE_string("output", None, "score: output JSON lines")
_MGSM = flags.DEFINE_string("mgsm", None, "best_of_n: MGSM directory or mgsm_<lang>.tsv")
_MATH500 = flags.DEFINE_string("math500", None, "best_of_n: MATH500 test.jsonl or directory")
_LANGUAGES = flags.DEFINE_list("languages", [], "best_of_n: languages to evaluate (all)")
_LIMIT = flags.DEFINE_integer("limit", 0, "best_of_n: questions per language (0: all)")
_OUT = flags.DEFINE_string("out", None, "best_of_n: report directory")
_N = flags.DEFINE_integer("n", 16, "best_of_n: samples per question (<= 64)")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.7, "best_of_n: sampling temperature")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 256, "best_of_n: tokens per solution")
_AGGREGATE = flags.DEFINE_enum("aggregate", None, ["min", "last", "mean"],
                               "solution score (default: the config's prm.aggregate, else min)")
_SEED = flags.DEFINE_integer("seed", 0, "best_of_n: sampling seed")
COMMANDS = ("train", "score", "best_of_n")


def _load(path):
    from eurollm_jax.inference import load_for_inference
    from eurollm_jax.tokenizer import ByteTokenizer

    model, tok = load_for_inference(path, tokenizer=_TOKENIZER.value)
    return model, tok if tok is not None else ByteTokenizer()


def _need(**values):
    missing = [f"--{k}" for k, v in values.items() if not v]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(f"usage: python -m launch.prm {{{'|'.join(COMMANDS)}}} [flags]", file=sys.stderr)
        return 2
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("eurollm_jax").setLevel(logging.INFO)
    from eurollm_jax import prm
    from eurollm_jax.schema import ConfigError
    from eurollm_jax.train import CheckpointMismatchError, TrainConfigError

    command = argv[1]
    try:
        if command == "train":
            _need(config=_CONFIG.value, workdir=_WORKDIR.value)
            result, counts = prm.train_prm(_CONFIG.value, _WORKDIR.value)
            print(json.dumps({"records": counts["records"], "load": counts["load"]}, indent=1))
            print(f"{'stopped early' if result.stopped_early else 'done'} at step {result.step}; "
                  f"PRM params in {result.workdir}/params")
            return 0
        _need(prm=_PRM.value)
        section = prm.split_config(_CONFIG.value)[0] if _CONFIG.value else prm.PRMSection()
        how = _AGGREGATE.value or section.aggregate
        model, tok = _load(_PRM.value)
        if command == "score":
            _need(input=_INPUT.value, output=_OUTPUT.value)
            from eurollm_jax.prm.scoring import score_file

            scorer = prm.PRMScorer(model, tok, section.format)
            print(json.dumps(score_file(scorer, _INPUT.value, _OUTPUT.value, how=how), indent=1))
            return 0
        _need(generator=_GENERATOR.value, out=_OUT.value)
        if bool(_MGSM.value) == bool(_MATH500.value):
            raise ValueError("give exactly one of --mgsm or --math500")
        langs = tuple(_LANGUAGES.value) or tuple(section.test_languages)
        questions = (prm.read_mgsm(_MGSM.value, languages=langs) if _MGSM.value
                     else prm.read_math500(_MATH500.value, languages=langs))
        if _LIMIT.value:
            questions = prm.first_per_language(questions, _LIMIT.value)
        generator, _ = (model, tok) if _GENERATOR.value == _PRM.value else _load(_GENERATOR.value)
        from eurollm_jax.prm.best_of_n import run_best_of_n

        table = run_best_of_n(generator, model, tok, questions, _OUT.value, n=_N.value,
                              fmt=section.format, aggregate_by=how,
                              temperature=_TEMPERATURE.value,
                              max_new_tokens=_MAX_NEW.value, seed=_SEED.value)
        print(prm.markdown_table(table))
        return 0
    except (ValueError, FileNotFoundError, ConfigError, TrainConfigError,
            CheckpointMismatchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
