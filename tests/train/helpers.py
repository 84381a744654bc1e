"""Small job configs shared by the trainer tests (fp32, tiny shapes: fast to compile)."""

import ml_collections

from configs.base import base_config

SMALL_MODEL = dict(
    vocab_size=384,
    d_model=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=16,
    ffn_dim=128,
    max_seq_len=256,
    compute_dtype="float32",
    param_dtype="float32",
    attention_impl="xla",
)


def small_config(mesh=(2, 2, 2), **train) -> ml_collections.ConfigDict:
    config = base_config("tiny", **SMALL_MODEL)
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = mesh
    config.train.steps = 6
    config.train.batch_size = 8
    config.train.seq_len = 32
    config.train.log_every = 1
    config.checkpoint.every = 3
    config.checkpoint.export_params = False
    config.data.num_docs = 128
    config.optimizer.warmup_steps = 2
    config.optimizer.lr = 3e-3
    for k, v in train.items():
        config.train[k] = v
    return config


def override(config, **dotted):
    """``override(cfg, **{"optimizer.lr": 1e-3})``."""
    for key, value in dotted.items():
        node = config
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return config
