"""Train a SentencePiece tokenizer with EuroLLM's choices and report its fertility.

  python -m launch.train_tokenizer --input=corpus/train.jsonl --output=tok/tokenizer.model \
      --vocab_size=128000 --temperature=3 --heldout=corpus/heldout.jsonl \
      --compare=eurollm=/path/EuroLLM-9B/tokenizer.model
  python -m launch.train_tokenizer --demo --output=/tmp/tok/tokenizer.model --vocab_size=8000

BPE, byte fallback, digits split, special ids <unk>=0 <s>=1 </s>=2 <|im_start|>=3
<|im_end|>=4, lossless text; languages sampled with temperature over a character budget.
With --heldout it writes fertility.{md,json,png} next to the model (or in --report_dir).
--demo builds the offline demo corpus first and trains/evaluates on it.
"""

import os

from absl import app, flags

from eurollm_jax.documents import expand_inputs
from eurollm_jax.tokenizer.fertility import named_paths
from eurollm_jax.tokenizer.train import TokenizerTrainConfig, train_and_report

_DEFAULTS = TokenizerTrainConfig()  # flag defaults are the training config's own

FLAGS = flags.FLAGS
flags.DEFINE_list("input", [], "training documents: JSONL (.gz/.zst)/Parquet files, globs or "
                  "tfds: specs")
flags.DEFINE_string("output", None, "path of the tokenizer.model to write")
flags.DEFINE_integer("vocab_size", _DEFAULTS.vocab_size, "vocabulary size (EuroLLM: 128,000)")
flags.DEFINE_float("temperature", _DEFAULTS.temperature,
                   "language sampling temperature (1 = proportional)")
flags.DEFINE_integer("char_budget", _DEFAULTS.char_budget, "characters of training text at most")
flags.DEFINE_float("character_coverage", _DEFAULTS.character_coverage,
                   "SentencePiece character coverage")
flags.DEFINE_bool("split_digits", _DEFAULTS.split_digits, "split numbers into single digits")
flags.DEFINE_integer("input_sentence_size", _DEFAULTS.input_sentence_size,
                     "cap on sentences SentencePiece loads (0: all)")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "sampling seed")
flags.DEFINE_integer("num_threads", _DEFAULTS.num_threads, "training threads")
flags.DEFINE_list("heldout", [], "held-out documents for the fertility report")
flags.DEFINE_list("compare", [], "NAME=PATH of tokenizers to compare with")
flags.DEFINE_string("report_dir", None, "where fertility.{md,json,png} go (default: by the model)")
flags.DEFINE_string("name", "new", "label of the trained tokenizer in the fertility table")
flags.DEFINE_bool("demo", False, "build the demo corpus next to --output and use it")
flags.mark_flag_as_required("output")


def main(argv):
    del argv
    inputs, heldout = list(FLAGS.input), list(FLAGS.heldout)
    if FLAGS.demo:
        from eurollm_jax.data import demo_corpus

        corpus_dir = os.path.join(os.path.dirname(os.path.abspath(FLAGS.output)), "demo_corpus")
        stats = demo_corpus.build(corpus_dir)
        inputs = inputs or [stats["paths"]["train"]]
        heldout = heldout or [stats["paths"]["heldout"]]
    if not inputs:
        raise app.UsageError("give --input files (or --demo)")
    try:
        inputs = expand_inputs(inputs)
        heldout = expand_inputs(heldout) if heldout else []
    except (FileNotFoundError, ValueError) as e:
        raise app.UsageError(f"--input/--heldout: {e}") from e
    config = TokenizerTrainConfig(
        vocab_size=FLAGS.vocab_size, temperature=FLAGS.temperature,
        char_budget=FLAGS.char_budget, character_coverage=FLAGS.character_coverage,
        split_digits=FLAGS.split_digits, input_sentence_size=FLAGS.input_sentence_size,
        seed=FLAGS.seed, num_threads=FLAGS.num_threads,
    )
    report = train_and_report(inputs, FLAGS.output, config, heldout, named_paths(FLAGS.compare),
                              FLAGS.report_dir, name=FLAGS.name)
    print(f"wrote {FLAGS.output} (vocab {report['vocab_size']}, {report['seconds']:.1f}s)")
    if report["bad_input"]["total"]:
        print(f"skipped {report['bad_input']['total']} bad input lines (see the .json report)")
    if "fertility_table" in report:
        print(report["fertility_table"])
        print(f"fertility report: {report['fertility_dir']}/fertility.png")


if __name__ == "__main__":
    app.run(main)
