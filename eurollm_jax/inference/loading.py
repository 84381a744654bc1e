"""Loading a model (and its tokenizer) for inference from whatever the user points at.

One function, ``load_for_inference``, used by ``launch.serve`` and the lm-eval backend:
a Hugging Face checkpoint directory (config.json + safetensors, as EuroLLM is published),
an Orbax params directory (``model_config.json`` + ``params/``, written by
``save_params`` / the trainer), or a preset name with random weights (smoke tests).
The tokenizer defaults to ``tokenizer.model`` next to the weights.

Model overrides (``check_model_overrides``): a checkpoint fixes the model's shapes, so only
the fields in ``LOAD_TIME_FIELDS`` (dtypes, attention kernel, layer scan, context length)
may change at load time; a preset takes any ``ModelConfig`` field. Unknown or shape-fixing
names are errors that list the valid ones, never silently dropped. Values given as strings
(command lines, lm-eval's ``--model_args``) are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

from eurollm_jax.inference import tokenization as tok_lib
from eurollm_jax.model.config import ModelConfig

# ModelConfig fields a checkpoint's config does not fix: how to run it, not what it is.
LOAD_TIME_FIELDS = ("compute_dtype", "param_dtype", "attention_impl", "scan_layers", "max_seq_len")
_TRUE, _FALSE = ("1", "true", "yes", "y", "on"), ("0", "false", "no", "n", "off")


def _convert(name: str, value, default):
    """A string ``value`` converted to the type of the field's ``default``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"model override {name}={value!r}: expected true or false")
    if isinstance(default, str):
        return text
    if default is None:  # int | None fields (head_dim, pad_token_id)
        if text.lower() in ("none", "null", ""):
            return None
        kind = int
    else:
        kind = float if isinstance(default, float) else int
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"model override {name}={value!r}: expected {kind.__name__}") from None


def check_model_overrides(
    overrides: Mapping[str, Any], *, shapes_fixed: bool = True
) -> dict[str, Any]:
    """``overrides`` validated against ``ModelConfig`` and converted from strings.

    With ``shapes_fixed`` (loading a checkpoint) only ``LOAD_TIME_FIELDS`` are allowed;
    without it (a preset with random weights) any ModelConfig field. Raises ValueError
    naming the offending keys and the valid ones.
    """
    fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    allowed = LOAD_TIME_FIELDS if shapes_fixed else tuple(fields)
    unknown = sorted(k for k in overrides if k not in fields)
    fixed = sorted(k for k in overrides if k in fields and k not in allowed)
    if unknown:
        raise ValueError(
            f"unknown model override(s) {unknown}; valid overrides: {sorted(allowed)}"
        )
    if fixed:
        raise ValueError(
            f"model override(s) {fixed} are fixed by the checkpoint's own config; at load "
            f"time only {sorted(allowed)} can change"
        )
    defaults = {k: (f.default if f.default is not dataclasses.MISSING else None)
                for k, f in fields.items()}
    converted = {k: _convert(k, v, defaults[k]) for k, v in overrides.items()}
    # Load-time fields do not depend on the shapes: check their values now (a bad dtype or
    # kernel name fails before any weights are read).
    ModelConfig(**{k: v for k, v in converted.items() if k in LOAD_TIME_FIELDS})
    return converted


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
    compute_dtype=None,
    param_dtype=None,
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
      compute_dtype / param_dtype: activation and weight dtypes, any spelling
        ``canonical_dtype`` accepts ("bfloat16" halves memory); default the source's own
        (HF checkpoints load float32 weights, a params dir keeps its saved dtype).
      overrides: other ``ModelConfig`` fields (``check_model_overrides``): for a
        checkpoint one of ``LOAD_TIME_FIELDS`` (attention_impl, scan_layers, max_seq_len),
        for a preset any field.
    """
    if (path is None) == (preset is None):
        raise ValueError("give exactly one of a checkpoint path or a preset name")
    extra = check_model_overrides(overrides, shapes_fixed=preset is None)
    for name, value in (("compute_dtype", compute_dtype), ("param_dtype", param_dtype)):
        if value is not None:  # `if value:` would drop np.dtype objects (they are falsy)
            extra[name] = value
    mesh = parse_mesh(mesh)
    if preset is not None:
        from eurollm_jax.model import create_model, get_preset

        model = create_model(get_preset(preset, **extra), mesh=mesh, seed=seed)
    elif os.path.exists(os.path.join(path, "model_config.json")):
        from eurollm_jax.checkpoint import load_params

        model = load_params(path, mesh=mesh, **extra)
    elif os.path.isdir(path) and os.path.exists(os.path.join(path, "config.json")):
        from eurollm_jax.checkpoint import load_hf_checkpoint

        extra.setdefault("param_dtype", "float32")
        model = load_hf_checkpoint(path, mesh=mesh, **extra)
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
