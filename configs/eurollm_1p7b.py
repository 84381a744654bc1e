"""The eurollm-1.7b preset."""

from configs.base import base_config


def get_config():
    return base_config("eurollm-1.7b")
