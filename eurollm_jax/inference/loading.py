"""Loading a model (and its tokenizer) for inference from whatever the user points at.

One function, ``load_for_inference``, used by ``launch.serve`` and the lm-eval backend:
a Hugging Face checkpoint directory (config.json + safetensors, as EuroLLM is published),
an Orbax params directory (``model_config.json`` + ``params/``, written by
``save_params`` / the trainer), or a preset name with random weights (smoke tests).
The tokenizer defaults to ``tokenizer.model`` next to the weights.
"""

from __future__ import annotations

import os
from typing import Sequence

from eurollm_jax.inference import tokenization as tok_lib


def parse_mesh(mesh):
    """A mesh, or its shape as "data,fsdp,tensor" / a sequence -> a mesh (None stays None)."""
    if mesh is None or not isinstance(mesh, (str, list, tuple)):
        return mesh
    from eurollm_jax.parallel import create_mesh

    return create_mesh(mesh.split(",") if isinstance(mesh, str) else mesh)


def load_for_inference(
    path: str | None = None,
    *,
    preset: str | None = None,
    tokenizer: str | None = None,
    mesh: str | Sequence[int] | None = None,
    compute_dtype: str | None = None,
    param_dtype: str = "float32",
    seed: int = 0,
    **overrides,
):
    """(model, tokenizer or None) for inference.

    Args:
      path: an HF checkpoint directory (has config.json) or an Orbax params directory
        (has model_config.json).
      preset: instead of ``path``, a model preset with random weights (``get_preset``).
      tokenizer: a tokenizer.model path; default ``<path>/tokenizer.model`` when present.
      mesh: a mesh, or its shape as "data,fsdp,tensor" (e.g. "1,-1,1"); default one device.
      compute_dtype / param_dtype: activation and weight dtypes ("bfloat16" halves memory).
    """
    if (path is None) == (preset is None):
        raise ValueError("give exactly one of a checkpoint path or a preset name")
    mesh = parse_mesh(mesh)
    if preset is not None:
        from eurollm_jax.model import create_model, get_preset

        extra = dict(overrides, param_dtype=param_dtype)
        if compute_dtype:
            extra["compute_dtype"] = compute_dtype
        model = create_model(get_preset(preset, **extra), mesh=mesh, seed=seed)
    elif os.path.exists(os.path.join(path, "model_config.json")):
        from eurollm_jax.checkpoint import load_params

        extra = dict(overrides)
        if compute_dtype:
            extra["compute_dtype"] = compute_dtype
        model = load_params(path, mesh=mesh, **extra)
    elif os.path.isdir(path) and os.path.exists(os.path.join(path, "config.json")):
        from eurollm_jax.checkpoint import load_hf_checkpoint

        model = load_hf_checkpoint(
            path, mesh=mesh, param_dtype=param_dtype, compute_dtype=compute_dtype, **overrides
        )
    else:
        raise FileNotFoundError(
            f"{path!r} is neither a Hugging Face checkpoint directory (config.json) nor an Orbax "
            f"params directory (model_config.json)"
        )
    tok = None
    if (
        tokenizer is None
        and path is not None
        and os.path.exists(os.path.join(path, "tokenizer.model"))
    ):
        tokenizer = os.path.join(path, "tokenizer.model")
    if tokenizer is not None:
        tok = tok_lib.load_tokenizer(tokenizer)
        vocab = tok_lib.int_attribute(tok, "vocab_size")
        if vocab is not None and vocab > model.cfg.vocab_size:
            raise ValueError(
                f"tokenizer {tokenizer} has {vocab} pieces but the model's vocabulary is "
                f"{model.cfg.vocab_size}; they do not belong together"
            )
    return model, tok
