"""HBO on bucketed SFT data (issue 15): global + local actors with the paper's settings
(rewards every 200 steps, 200 Adam steps at lr 1e-4 per update, tau = 1, 4 buckets).

Write the bucketed file first (``eurollm_jax.hbo.write_bucketed_sft``: IFD under a reference
checkpoint, sources ``<subset>/b<j>``), then::

    python -m eurollm_jax.hbo --config=configs/hbo.py --workdir=/tmp/hbo \
        --config.data.sft_file=/tmp/buckets.jsonl --config.train.init_params=/tmp/tiny/params

The same command runs the baselines and ablations (configs/hbo_tau*.py, hbo_uniform.py,
hbo_global_only.py, hbo_local_only.py), or ``--config.hbo.mode=static --config.hbo.tau=3``.
In-memory SFT is byte-level (model.vocab_size >= 259): the tiny preset.
"""

import ml_collections

from configs.sft_tiny import get_config as sft_tiny_config
from eurollm_jax.hbo.config import HBOSection


def get_config():
    config = sft_tiny_config()
    config.train.steps = 1000
    config.train.log_every = 10  # divides hbo.every: every reward record is logged
    config.data.source = "sft"
    config.data.sft_file = ""  # set on the command line: the bucketed SFT records
    config.data.eval_fraction = 0.0  # hold out data yourself (per subset) for evaluation
    config.eval.every = 0
    config.checkpoint.every = 200
    # The paper's fine-tuning recipe: lr 1e-5, weight decay 0.1, 10% warm-up, linear decay.
    config.optimizer.lr = 1e-5
    config.optimizer.weight_decay = 0.1
    config.optimizer.schedule = "wsd"
    config.optimizer.warmup_steps = -1
    config.optimizer.warmup_fraction = 0.1
    config.optimizer.decay_fraction = 0.9
    config.hbo = ml_collections.ConfigDict(HBOSection().to_dict(), type_safe=False)
    return config
