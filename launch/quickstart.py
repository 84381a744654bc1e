"""A one-minute tour on the tiny preset: build a sharded model on every local device,
run it, export it to Hugging Face format, load it back and compare logits.

  python -m launch.quickstart [--workdir=/tmp/eurollm_quickstart]
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import eurollm_jax

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eurollm_quickstart", "where the exported checkpoint goes")


def main(argv):
    del argv
    start = time.time()
    cfg = eurollm_jax.get_preset("tiny", compute_dtype="float32")
    mesh = eurollm_jax.create_mesh((1, -1, 1))
    model = eurollm_jax.create_model(cfg, mesh=mesh, seed=0)
    print(f"tiny EuroLLM: {cfg.param_count() / 1e6:.1f}M parameters on mesh {dict(mesh.shape)}")
    ids = jnp.asarray(np.random.RandomState(0).randint(0, cfg.vocab_size, (jax.device_count(), 32)))
    with jax.set_mesh(mesh):
        logits = jax.jit(lambda m, x: m(x))(model, ids)
    print(f"logits {logits.shape}, mean next-token entropy "
          f"{float(-(jax.nn.softmax(logits) * jax.nn.log_softmax(logits)).sum(-1).mean()):.3f} nats")
    out = os.path.join(FLAGS.workdir, "hf")
    eurollm_jax.save_hf_checkpoint(model, out)
    again = eurollm_jax.load_hf_checkpoint(out, compute_dtype="float32")
    diff = float(jnp.abs(again(ids) - logits).max())
    print(f"exported to {out} and reloaded: max |logit diff| = {diff:.2e}")
    print(f"done in {time.time() - start:.1f} s")


if __name__ == "__main__":
    app.run(main)
