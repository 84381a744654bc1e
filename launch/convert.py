"""Convert checkpoints: Hugging Face (safetensors) <-> Orbax params directory.

  python -m launch.convert --to=orbax --input=/path/EuroLLM-9B --output=/path/params
  python -m launch.convert --to=hf --input=/path/params --output=/path/hf --dtype=bfloat16 \
      --tokenizer=/path/tokenizer.model

The HF output gets tokenizer.model, tokenizer.json, tokenizer_config.json (with the ChatML
chat template), special_tokens_map.json and the chat stop ids in generation_config.json
when a tokenizer is known: --tokenizer, or a tokenizer.model in the input directory.
"""

from absl import app, flags

from eurollm_jax.checkpoint.convert import convert

FLAGS = flags.FLAGS
flags.DEFINE_enum("to", None, ["orbax", "hf"], "target format")
flags.DEFINE_string("input", None, "source directory")
flags.DEFINE_string("output", None, "target directory")
flags.DEFINE_string("dtype", None, "parameter dtype to write (default: keep)")
flags.DEFINE_string("mesh", "1,-1,1", "data,fsdp,tensor mesh to load onto")
flags.DEFINE_string("tokenizer", None,
                    "tokenizer.model (or a directory holding one) to write with the weights "
                    "(default: the input directory's tokenizer.model, if any)")
flags.DEFINE_bool("force", False, "overwrite a non-empty output directory")
flags.mark_flags_as_required(["to", "input", "output"])


def main(argv):
    del argv
    mesh = tuple(int(x) for x in FLAGS.mesh.split(","))
    out = convert(FLAGS.to, FLAGS.input, FLAGS.output, mesh_shape=mesh, dtype=FLAGS.dtype, force=FLAGS.force,
                  tokenizer=FLAGS.tokenizer)
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
