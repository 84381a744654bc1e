"""The eurollm-22b preset (layer count: see eurollm_jax.model.config), 9B-like recipe."""

from configs.base import base_config


def get_config():
    config = base_config("eurollm-22b", remat_policy="full")
    t = config.train
    t.steps = 350_000
    t.batch_size = 2048
    t.seq_len = 4096
    t.log_every = 50
    t.loss_chunk = 1024
    config.optimizer.lr = 2e-4
    config.checkpoint.every = 1000
    config.data.source = "pipeline"
    return config
