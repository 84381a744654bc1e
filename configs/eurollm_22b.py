"""The eurollm-22b preset (layer count: see eurollm_jax.model.config), 9B-like recipe."""

from configs.base import pretrain_config


def get_config():
    return pretrain_config(
        "eurollm-22b", steps=350_000, batch_size=2048, lr=2e-4, remat_policy="full"
    )
