"""The eurollm-1.7b preset, trained with the same recipe as the 9B (scaled: 4M-token batches;
WSD schedule, 1% warm-up, decay over the last 10%: the defaults of configs/base.py).

Also the GPU benchmark shape of docs/performance.md:
``--config.train.batch_size=4 --config.train.seq_len=4096``.
"""

from configs.base import pretrain_config


def get_config():
    return pretrain_config("eurollm-1.7b", steps=100_000, batch_size=1024, lr=3e-4)
