"""PRM-multi: train the process reward model on step-labelled solutions in every language
of the data (the paper's 7: en, de, es, fr, ru, sw, zh), test on all.

    python -m launch.prm train --config=configs/prm_multi.py --workdir=/tmp/prm_multi \
        --config.prm.train_data='/data/prm/*.jsonl' --config.train.init_params=/tmp/tiny/params

The trainer sections are those of configs/sft_tiny.py (byte-level in-memory SFT, the tiny
model); ``prm`` is ``eurollm_jax.prm.PRMSection`` (loss ``two_way``: cross-entropy over the
two label tokens at the step tags; ``full``: full-vocabulary cross-entropy there).
"""

import ml_collections

from configs.sft_tiny import get_config as sft_config
from eurollm_jax.prm import PRMSection

TRAIN_LANGUAGES = ("en", "de", "es", "fr", "ru", "sw", "zh")


def prm_config(setup: str, train_languages=(), test_languages=()):
    config = sft_config()
    config.model.vocab_size = max(261, config.model.vocab_size)
    config.train.steps = 500
    config.train.seq_len = 512
    config.data.weighting = "uniform"  # each language's records equally often
    config.data.eval_fraction = 0.05
    values = PRMSection(setup=setup, train_languages=tuple(train_languages),
                        test_languages=tuple(test_languages)).to_dict()
    config.prm = ml_collections.ConfigDict(values)
    return config


def get_config():
    return prm_config("multi", TRAIN_LANGUAGES)
