"""The eurollm-22b preset."""

from configs.base import base_config


def get_config():
    return base_config("eurollm-22b")
