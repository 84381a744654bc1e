"""PRM-cross: train on one language (English), test on every language. See
configs/prm_multi.py."""

from configs.prm_multi import prm_config


def get_config():
    return prm_config("cross", ("en",))
