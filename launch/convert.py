"""Convert checkpoints: Hugging Face (safetensors) <-> Orbax params directory.

  python -m launch.convert --to=orbax --input=/path/EuroLLM-9B --output=/path/params
  python -m launch.convert --to=hf --input=/path/params --output=/path/hf --dtype=bfloat16 \
      --tokenizer=/path/tokenizer.model

The HF output gets tokenizer.model, tokenizer.json, tokenizer_config.json (with the ChatML
chat template), special_tokens_map.json and the chat stop ids in generation_config.json
when a tokenizer is known: --tokenizer, or a tokenizer.model in the input directory.

  python -m launch.convert --check=/path/hf

compares our loading of a Hugging Face directory with transformers' on sample text in the
24 EU languages (token ids, chat template, logits) and reports the first difference; the
exit status is 1 when something differs.
"""

import sys

from absl import app, flags

from eurollm_jax.checkpoint.convert import convert

FLAGS = flags.FLAGS
flags.DEFINE_string("check", None, "a Hugging Face directory to compare with transformers (no conversion)")
flags.DEFINE_enum("to", None, ["orbax", "hf"], "target format")
flags.DEFINE_string("input", None, "source directory")
flags.DEFINE_string("output", None, "target directory")
flags.DEFINE_string("dtype", None, "parameter dtype to write (default: keep)")
flags.DEFINE_string("mesh", "1,-1,1", "data,fsdp,tensor mesh to load onto")
flags.DEFINE_string("tokenizer", None,
                    "tokenizer.model (or a directory holding one) to write with the weights "
                    "(default: the input directory's tokenizer.model, if any)")
flags.DEFINE_bool("force", False, "overwrite a non-empty output directory")


def main(argv):
    del argv
    if FLAGS.check:
        from eurollm_jax.checkpoint.hf_check import check_hf_directory, format_report, passed

        report = check_hf_directory(FLAGS.check)
        print(format_report(report))
        sys.exit(0 if passed(report) else 1)
    missing = [f"--{name}" for name in ("to", "input", "output") if not getattr(FLAGS, name)]
    if missing:
        raise app.UsageError(f"{', '.join(missing)} required (or --check=DIR)")
    mesh = tuple(int(x) for x in FLAGS.mesh.split(","))
    out = convert(FLAGS.to, FLAGS.input, FLAGS.output, mesh_shape=mesh, dtype=FLAGS.dtype, force=FLAGS.force,
                  tokenizer=FLAGS.tokenizer)
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
