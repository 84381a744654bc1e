"""SFT of the tiny model: ChatML conversations, loss on assistant turns only, started from
the params a pre-training run exported (``WORKDIR/params``) with a fresh optimizer.

    python -m launch.train --config=configs/tiny.py --workdir=/tmp/tiny
    python -m launch.train --config=configs/sft_tiny.py --workdir=/tmp/tiny_sft \
        --config.train.init_params=/tmp/tiny/params

``--config.train.trainable='("lm_head",)'`` trains only the head (everything else frozen).
"""

from configs.tiny import get_config as tiny_config


def get_config():
    config = tiny_config()
    t = config.train
    t.steps = 100
    t.init_params = ""  # set on the command line: a params directory
    config.optimizer.lr = 1e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 5
    config.optimizer.weight_decay = 0.0
    config.data.source = "sft"
    config.checkpoint.every = 50
    config.eval.every = 50
    return config
