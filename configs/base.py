"""Shared pieces of the ml_collections configs: ``base_config(preset)``.

A job config has a ``model`` section (ModelConfig fields), a ``mesh`` section
(data/fsdp/tensor sizes, -1 = the rest); stages add their own sections (train,
checkpoint, data, ...). Override anything on the command line, e.g.
``--config.model.remat_policy=full --config.mesh.tensor=2``.
"""

import ml_collections

from eurollm_jax.model.config import get_preset


def model_section(preset: str, **overrides) -> ml_collections.ConfigDict:
    values = get_preset(preset, **overrides).to_dict()
    return ml_collections.ConfigDict(values, type_safe=False)


def base_config(preset: str, **model_overrides) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = model_section(preset, **model_overrides)
    config.mesh = ml_collections.ConfigDict({"data": 1, "fsdp": -1, "tensor": 1})
    config.seed = 0
    return config
