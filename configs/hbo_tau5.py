"""HBO baseline / ablation, same command as configs/hbo.py: temperature sampling (tau = 5)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "static"
    config.hbo.tau = 5.0
    return config
