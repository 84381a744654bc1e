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
from eurollm_jax.documents import ReaderConfig, expand_inputs
from eurollm_jax.documents.reader import KINDS
from eurollm_jax.schema import ConfigError

# Flag defaults are the schema's (TokenizeConfig and its reader section, ReaderConfig).
FLAGS = flags.FLAGS
flags.DEFINE_list("input", None, "input files, globs or tfds:NAME[/CONFIG][:SPLIT] specs")
flags.DEFINE_string("output_dir", None, "where shards, markers and manifest.json go")
flags.DEFINE_string("tokenizer", None, "SentencePiece tokenizer.model")
flags.DEFINE_enum("kind", ReaderConfig.kind, list(KINDS), "text documents or conversations")
flags.DEFINE_integer("num_workers", TokenizeConfig.num_workers,
                     "parallel processes (one input each at a time)")
flags.DEFINE_bool("add_bos", TokenizeConfig.add_bos, "start each document with <s>")
flags.DEFINE_bool("add_eos", TokenizeConfig.add_eos, "end each pre-training document with </s>")
flags.DEFINE_string("text_field", ReaderConfig.text_field, "JSON field with the text")
flags.DEFINE_string("lang_field", ReaderConfig.lang_field, "JSON field with the language")
flags.DEFINE_string("source_field", ReaderConfig.source_field, "JSON field with the source name")
flags.DEFINE_string("messages_field", ReaderConfig.messages_field, "JSON field with SFT messages")
flags.DEFINE_string("default_lang", ReaderConfig.default_lang, "language when a record has none")
flags.DEFINE_string("default_source", ReaderConfig.default_source,
                    "source when a record has none (default: file stem)")
flags.DEFINE_string("tfds_data_dir", ReaderConfig.tfds_data_dir, "data_dir for tfds: inputs")
flags.DEFINE_integer("max_records_per_shard", TokenizeConfig.max_records_per_shard,
                     "documents per ArrayRecord shard")
flags.mark_flags_as_required(["input", "output_dir", "tokenizer"])

READER_FLAGS = ("kind", "text_field", "lang_field", "source_field", "messages_field",
                "default_lang", "default_source", "tfds_data_dir")
JOB_FLAGS = ("output_dir", "tokenizer", "num_workers", "add_bos", "add_eos",
             "max_records_per_shard")


def main(argv):
    del argv
    try:
        inputs = expand_inputs(FLAGS.input)
    except (FileNotFoundError, ValueError) as e:
        raise app.UsageError(f"--input: {e}") from e
    values = {name: FLAGS[name].value for name in JOB_FLAGS}
    values["reader"] = {name: FLAGS[name].value for name in READER_FLAGS}
    try:
        config = TokenizeConfig.from_mapping(dict(values, inputs=inputs))
    except ConfigError as e:
        raise app.UsageError(f"bad flags: {e}") from e
    manifest = run(config)
    print(summarize(manifest))
    print(f"manifest: {FLAGS.output_dir}/manifest.json")
    return 1 if manifest["failed_inputs"] else 0


if __name__ == "__main__":
    app.run(main)
