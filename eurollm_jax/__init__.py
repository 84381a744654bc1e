"""eurollm_jax: build European multilingual LLMs (EuroLLM) end to end in JAX/Flax.

The top level re-exports the few entry points most users need; each stage lives in its
own sub-package (model, parallel, checkpoint, tokenizer, data, train, inference,
filtering, ...). The re-exports are resolved lazily, so ``import eurollm_jax.data`` in a
data worker process does not pay for importing jax and flax.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_hf_checkpoint": "eurollm_jax.checkpoint",
    "save_hf_checkpoint": "eurollm_jax.checkpoint",
    "load_params": "eurollm_jax.checkpoint",
    "save_params": "eurollm_jax.checkpoint",
    "ModelConfig": "eurollm_jax.model",
    "Transformer": "eurollm_jax.model",
    "create_model": "eurollm_jax.model",
    "get_preset": "eurollm_jax.model",
    "MeshConfig": "eurollm_jax.parallel",
    "create_mesh": "eurollm_jax.parallel",
    "generate": "eurollm_jax.inference",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'eurollm_jax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
