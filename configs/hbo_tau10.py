"""HBO baseline / ablation, same command as configs/hbo.py: temperature sampling (tau = 10)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "static"
    config.hbo.tau = 10.0
    return config
