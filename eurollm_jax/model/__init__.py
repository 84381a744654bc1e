"""The EuroLLM model: configuration, presets, dtype names, the NNX decoder and its constructors."""

from eurollm_jax.model.config import (
    DTYPES,
    PRESETS,
    ConfigError,
    ModelConfig,
    canonical_dtype,
    get_preset,
)
from eurollm_jax.model.factory import (
    abstract_model,
    count_params,
    create_model,
    model_shardings,
)
from eurollm_jax.model.transformer import ModelOutput, Transformer, dense, positions_from_segments

__all__ = [
    "DTYPES",
    "PRESETS",
    "ConfigError",
    "ModelConfig",
    "canonical_dtype",
    "get_preset",
    "abstract_model",
    "count_params",
    "create_model",
    "model_shardings",
    "ModelOutput",
    "Transformer",
    "dense",
    "positions_from_segments",
]
