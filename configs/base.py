"""Shared pieces of the ml_collections configs: ``base_config(preset)``.

A job config has a ``model`` section (ModelConfig fields), a ``mesh`` section
(data/fsdp/tensor sizes, -1 = the rest) and the trainer's sections ``train``,
``optimizer``, ``checkpoint``, ``data``, ``eval``. Their fields, defaults and checks are
defined once, as typed dataclasses, in ``eurollm_jax/train/config.py`` (each field is
commented there); this module only turns those defaults into ConfigDicts, which are the
command-line surface. Override anything, e.g. ``--config.train.steps=100
--config.model.remat_policy=full --config.mesh.tensor=2``; an unknown key is an error that
names the nearest valid one.
"""

import ml_collections

from eurollm_jax.model.config import get_preset
from eurollm_jax.parallel import MeshConfig
from eurollm_jax.train.config import default_sections


def model_section(preset: str, **overrides) -> ml_collections.ConfigDict:
    values = get_preset(preset, **overrides).to_dict()
    return ml_collections.ConfigDict(values, type_safe=False)


def train_sections(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Add the trainer's sections with their defaults (``eurollm_jax.train.config``, the
    one place they are defined; EuroLLM's recipe where it is known)."""
    for name, values in default_sections().items():
        if name == "mesh":
            continue
        config[name] = ml_collections.ConfigDict(values, type_safe=False)
    return config


def base_config(preset: str, **model_overrides) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = model_section(preset, **model_overrides)
    config.mesh = ml_collections.ConfigDict(MeshConfig().to_dict())
    config.seed = 0
    train_sections(config)
    return config


def pretrain_config(
    preset: str, *, steps: int, batch_size: int, lr: float, **model_overrides
) -> ml_collections.ConfigDict:
    """A production pre-training job: 4,096-token rows from the data pipeline, the LM head's
    loss 1,024 positions at a time, a log line every 50 steps, a checkpoint every 1,000."""
    config = base_config(preset, **model_overrides)
    t = config.train
    t.steps, t.batch_size, t.seq_len = steps, batch_size, 4096
    t.log_every, t.loss_chunk = 50, 1024
    config.optimizer.lr = lr
    config.checkpoint.every = 1000
    config.data.source = "pipeline"
    return config
