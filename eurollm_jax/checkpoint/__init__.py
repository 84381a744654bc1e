"""Checkpoint formats: Hugging Face safetensors import/export and Orbax parameter trees."""

from eurollm_jax.checkpoint.hf import (
    CheckpointMismatchError,
    check_checkpoint,
    expected_hf_shapes,
    load_hf_checkpoint,
    load_hf_config,
    resolve_checkpoint_dir,
    save_hf_checkpoint,
)
from eurollm_jax.checkpoint.params import load_params, save_params

__all__ = [
    "CheckpointMismatchError",
    "check_checkpoint",
    "expected_hf_shapes",
    "load_hf_checkpoint",
    "load_hf_config",
    "resolve_checkpoint_dir",
    "save_hf_checkpoint",
    "load_params",
    "save_params",
]
