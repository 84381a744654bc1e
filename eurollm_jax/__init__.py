"""eurollm_jax: build European multilingual LLMs (EuroLLM) end to end in JAX/Flax.

The top level re-exports the few entry points most users need; each stage lives in its
own sub-package (model, parallel, checkpoint, tokenizer, data, train, inference,
filtering, ...).
"""

from eurollm_jax.checkpoint import load_hf_checkpoint, load_params, save_hf_checkpoint, save_params
from eurollm_jax.model import ModelConfig, Transformer, create_model, get_preset
from eurollm_jax.parallel import MeshConfig, create_mesh

__version__ = "0.1.0"

__all__ = [
    "load_hf_checkpoint",
    "save_hf_checkpoint",
    "load_params",
    "save_params",
    "ModelConfig",
    "Transformer",
    "create_model",
    "get_preset",
    "MeshConfig",
    "create_mesh",
]
