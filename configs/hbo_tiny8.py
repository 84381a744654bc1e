"""The tiny 8-language HBO experiment (issue 15): the shape of the paper's multilingual
setup at CPU scale. Eight language subsets of unequal size (continuation conversations
built from the offline demo corpus), IFD buckets under a tiny reference model pre-trained on
the same languages, SFT from it with HBO vs static mixtures, per-language held-out loss.

    python -m eurollm_jax.hbo.experiment --out=/tmp/hbo_tiny8     # data, reference, 4 runs

builds everything and writes ``report.md``; this file is the SFT job of one run (the
experiment sets ``data.sft_file``, ``train.init_params`` and ``hbo.mode``/``hbo.tau``).
Rewards come every 25 steps with a larger actor step than the paper's (the run is 400
steps, not thousands).
"""

import ml_collections

from configs.base import base_config
from eurollm_jax.hbo.config import HBOSection

MODEL = dict(vocab_size=384, d_model=128, num_layers=2, num_heads=4, num_kv_heads=2,
             head_dim=32, ffn_dim=384, max_seq_len=256, compute_dtype="float32",
             param_dtype="float32", attention_impl="xla")


def get_config():
    config = base_config("tiny", **MODEL)
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = 1, -1, 1
    t = config.train
    t.steps = 400
    t.batch_size = 16
    t.seq_len = 128
    t.log_every = 5
    t.init_params = ""  # the reference model's exported params (the experiment sets it)
    o = config.optimizer
    o.lr = 1e-3
    o.schedule = "wsd"
    o.warmup_steps = 40
    o.decay_fraction = 0.5
    o.weight_decay = 0.1
    config.data.source = "sft"
    config.data.sft_file = ""
    config.data.eval_fraction = 0.0
    config.eval.every = 0
    config.checkpoint.every = 200
    config.checkpoint.export_params = False
    hbo = HBOSection(every=25, actor_steps=200, actor_lr=2e-3, local_examples=8)
    config.hbo = ml_collections.ConfigDict(hbo.to_dict(), type_safe=False)
    return config
