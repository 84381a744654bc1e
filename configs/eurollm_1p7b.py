"""The eurollm-1.7b preset, trained with the same recipe as the 9B (scaled: 4M-token batches).

Also the GPU benchmark shape of DESIGN.md:
``--config.train.batch_size=4 --config.train.seq_len=4096``.
"""

from configs.base import base_config


def get_config():
    config = base_config("eurollm-1.7b")
    t = config.train
    t.steps = 100_000
    t.batch_size = 1024
    t.seq_len = 4096
    t.log_every = 50
    t.loss_chunk = 1024
    config.optimizer.lr = 3e-4
    config.optimizer.schedule = "wsd"
    config.optimizer.warmup_fraction = 0.01
    config.optimizer.decay_fraction = 0.1
    config.checkpoint.every = 1000
    config.data.source = "pipeline"
    return config
