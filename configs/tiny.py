"""The tiny preset (~7M parameters): CPU demos, tests and the CPU benchmark shape
(docs/performance.md).

Trains on real multilingual text out of the box (UDHR passages in the 24 EU languages,
byte-level): ``python -m launch.train --config=configs/tiny.py --workdir=/tmp/tiny``.
"""

from configs.base import base_config


def get_config():
    config = base_config("tiny", compute_dtype="float32")
    t = config.train
    t.steps = 300
    t.batch_size = 8
    t.seq_len = 256
    t.log_every = 10
    config.optimizer.lr = 3e-3
    config.optimizer.warmup_steps = 10
    config.optimizer.decay_fraction = 0.2
    config.checkpoint.every = 100
    config.data.source = "text"
    config.eval.every = 100
    return config
