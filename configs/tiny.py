"""The tiny preset."""

from configs.base import base_config


def get_config():
    return base_config("tiny")
