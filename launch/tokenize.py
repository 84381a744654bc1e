"""Tokenize documents (JSONL plain/.gz/.zst, Parquet, TFDS) into ArrayRecord shards + manifest.

  python -m launch.tokenize --input='corpus/*.jsonl' --tokenizer=tok/tokenizer.model \
      --output_dir=tokens/ --num_workers=4
  python -m launch.tokenize --input='filtered/kept/*.jsonl.zst' ...   # launch.filter output
  python -m launch.tokenize --input=tfds:jsonl_corpus/demo:train --tfds_data_dir=tfds/ ...
  python -m launch.tokenize --kind=sft --input=sft.jsonl ...   # {"messages": [...]} lines

Resumable: re-running skips inputs whose completion marker exists. See
eurollm_jax/data/tokenize_job.py for the layout and the manifest.
"""

from absl import app, flags

from eurollm_jax.data.tokenize_job import TokenizeConfig, run, summarize
from eurollm_jax.documents import expand_inputs

FLAGS = flags.FLAGS
flags.DEFINE_list("input", None, "input files, globs or tfds:NAME[/CONFIG][:SPLIT] specs")
flags.DEFINE_string("output_dir", None, "where shards, markers and manifest.json go")
flags.DEFINE_string("tokenizer", None, "SentencePiece tokenizer.model")
flags.DEFINE_enum("kind", "pretrain", ["pretrain", "sft"], "text documents or conversations")
flags.DEFINE_integer("num_workers", 1, "parallel processes (one input each at a time)")
flags.DEFINE_bool("add_bos", True, "start each document with <s>")
flags.DEFINE_bool("add_eos", True, "end each pre-training document with </s>")
flags.DEFINE_string("text_field", "text", "JSON field with the text")
flags.DEFINE_string("lang_field", "lang", "JSON field with the language")
flags.DEFINE_string("source_field", "source", "JSON field with the source name")
flags.DEFINE_string("messages_field", "messages", "JSON field with SFT messages")
flags.DEFINE_string("default_lang", None, "language when a record has none")
flags.DEFINE_string("default_source", None, "source when a record has none (default: file stem)")
flags.DEFINE_string("tfds_data_dir", None, "data_dir for tfds: inputs")
flags.DEFINE_integer("max_records_per_shard", 200_000, "documents per ArrayRecord shard")
flags.mark_flags_as_required(["input", "output_dir", "tokenizer"])


def main(argv):
    del argv
    try:
        inputs = expand_inputs(FLAGS.input)
    except (FileNotFoundError, ValueError) as e:
        raise app.UsageError(f"--input: {e}") from e
    config = TokenizeConfig(
        inputs=inputs, output_dir=FLAGS.output_dir, tokenizer=FLAGS.tokenizer,
        kind=FLAGS.kind, add_bos=FLAGS.add_bos, add_eos=FLAGS.add_eos,
        text_field=FLAGS.text_field, lang_field=FLAGS.lang_field,
        source_field=FLAGS.source_field, messages_field=FLAGS.messages_field,
        default_lang=FLAGS.default_lang, default_source=FLAGS.default_source,
        tfds_data_dir=FLAGS.tfds_data_dir, num_workers=FLAGS.num_workers,
        max_records_per_shard=FLAGS.max_records_per_shard,
    )
    manifest = run(config)
    print(summarize(manifest))
    print(f"manifest: {FLAGS.output_dir}/manifest.json")
    return 1 if manifest["failed_inputs"] else 0


if __name__ == "__main__":
    app.run(main)
