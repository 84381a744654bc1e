"""HBO baseline / ablation, same command as configs/hbo.py: uniform over subsets (tau = inf)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "static"
    config.hbo.tau = float("inf")
    return config
