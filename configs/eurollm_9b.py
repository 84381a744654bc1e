"""The eurollm-9b preset, with EuroLLM-9B's pre-training recipe as the train section.

Known (spec): ~4T tokens, constant batch 2,800 x 4,096 tokens, ~350k steps, AdamW, bf16,
a trapezoid (warmup-stable-decay) LR in three phases whose later phases move the mixture
to higher-quality data (annealing). Unknown, chosen here: peak LR 3e-4, 1% warm-up, the
phase split 70/20/10 % with a linear decay to 0 over the last phase, and the mixture
names (data groups of the production pipeline). 2,800 divides 400 GPUs, not a power-of-two
TPU slice: on a pod pick e.g. ``--config.train.batch_size=2816`` (= 44 x 64).
"""

from configs.base import pretrain_config

TOTAL_STEPS = 350_000


def get_config():
    config = pretrain_config(
        "eurollm-9b", steps=TOTAL_STEPS, batch_size=2800, lr=3e-4, remat_policy="dots"
    )
    config.train.phases = (
        {
            "name": "web",
            "steps": 245_000,
            "mixture": {"web": 0.85, "parallel": 0.05, "code_math": 0.10},
            "lr": {"start": 1.0, "end": 1.0, "warmup_steps": 3_500},
        },
        {
            "name": "quality",
            "steps": 70_000,
            "mixture": {"web": 0.60, "web_edu": 0.20, "parallel": 0.08, "code_math": 0.12},
            "lr": {"start": 1.0, "end": 1.0},
        },
        {
            "name": "anneal",
            "steps": 35_000,
            "mixture": {"web_edu": 0.55, "parallel": 0.15, "code_math": 0.15, "instruct": 0.15},
            "lr": {"start": 1.0, "end": 0.0, "shape": "linear"},
        },
    )
    config.eval.every = 5000
    config.eval.batches = 16
    return config
