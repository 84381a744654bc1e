"""HBO baseline / ablation, same command as configs/hbo.py: proportional sampling (tau = 1)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "static"
    config.hbo.tau = 1.0
    return config
