"""Dtype arguments take what JAX users pass ("float32", jnp.float32, np.float32,
jnp.dtype("bfloat16"), np.dtype(...)) and normalise to one canonical string; anything
else is a clear error."""

import json

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.model import ConfigError, ModelConfig, canonical_dtype, create_model
from tests.model.helpers import small_config

SPELLINGS = {
    "float32": ["float32", "FP32", "f32", jnp.float32, np.float32, jnp.dtype("float32"),
                np.dtype("float32"), np.dtype("f4"), "f4"],
    "bfloat16": ["bfloat16", "bf16", jnp.bfloat16, ml_dtypes.bfloat16, jnp.dtype("bfloat16"),
                 np.dtype(ml_dtypes.bfloat16)],
    "float16": ["float16", "fp16", "half", jnp.float16, np.float16, np.dtype("float16")],
}


@pytest.mark.parametrize(
    "spelling, name", [(s, n) for n, spellings in SPELLINGS.items() for s in spellings], ids=repr
)
def test_canonical_dtype_accepts_jax_spellings(spelling, name):
    assert canonical_dtype(spelling) == name
    cfg = small_config(compute_dtype=spelling, param_dtype=spelling)
    assert cfg.compute_dtype == name and cfg.param_dtype == name
    assert cfg == small_config(compute_dtype=name, param_dtype=name)
    assert hash(cfg) == hash(small_config(compute_dtype=name, param_dtype=name))
    assert jnp.dtype(cfg.dtype) == jnp.dtype(name) == jnp.dtype(cfg.weight_dtype)
    json.dumps(cfg.to_dict())  # still serialisable: strings, not dtype objects


@pytest.mark.parametrize("bad", ["float64", np.float64, jnp.int32, "int8", "floaty", None, 3, True])
def test_unsupported_dtypes_are_clear_errors(bad):
    valid = r"use one of \['float32', 'bfloat16', 'float16'\]"
    with pytest.raises(ConfigError, match=r"compute_dtype: unsupported dtype .*" + valid):
        small_config(compute_dtype=bad)
    with pytest.raises(ConfigError, match="param_dtype: unsupported dtype"):
        small_config(param_dtype=bad)


def test_replace_and_from_dict_normalise_too():
    cfg = small_config().replace(compute_dtype=jnp.bfloat16)
    assert cfg.compute_dtype == "bfloat16"
    back = ModelConfig.from_dict(dict(cfg.to_dict(), param_dtype=np.dtype("float16")))
    assert back.param_dtype == "float16"
    hf = ModelConfig.from_hf_config(cfg.to_hf_config(), compute_dtype=jnp.float32)
    assert hf.compute_dtype == "float32"


def test_create_model_with_dtype_objects():
    model = create_model(small_config(param_dtype=jnp.bfloat16, compute_dtype=np.float32))
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))}
    assert dtypes == {jnp.dtype("bfloat16")}
    assert model(jnp.zeros((1, 4), jnp.int32)).dtype == jnp.float32


def test_load_hf_checkpoint_takes_dtype_objects(tmp_path):
    from eurollm_jax.checkpoint import load_hf_checkpoint, save_hf_checkpoint

    model = create_model(small_config(), seed=3)
    save_hf_checkpoint(model, str(tmp_path), dtype="float32")
    loaded = load_hf_checkpoint(
        str(tmp_path), param_dtype=jnp.dtype("bfloat16"), compute_dtype=np.float32,
        attention_impl="xla",
    )
    assert loaded.cfg.param_dtype == "bfloat16" and loaded.cfg.compute_dtype == "float32"
    assert loaded.embed_tokens[...].dtype == jnp.bfloat16
