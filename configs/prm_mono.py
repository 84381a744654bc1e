"""PRM-mono: train and test in one language (default German; ``--config.prm.train_languages=
'("fr",)' --config.prm.test_languages='("fr",)'`` for another). See configs/prm_multi.py."""

from configs.prm_multi import prm_config


def get_config():
    return prm_config("mono", ("de",), ("de",))
