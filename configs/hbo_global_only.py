"""HBO ablation, same command as configs/hbo.py: only the global actor learns (buckets
stay uniform)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "global"
    config.hbo.tau = 1.0
    return config
