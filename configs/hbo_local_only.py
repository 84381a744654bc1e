"""HBO ablation, same command as configs/hbo.py: only the local actors learn (subsets stay
at q_1)."""

from configs.hbo import get_config as hbo_config


def get_config():
    config = hbo_config()
    config.hbo.mode = "local"
    config.hbo.tau = 1.0
    return config
