"""Hugging Face (transformers ``LlamaForCausalLM``) checkpoint import and export.

One table, ``_TENSOR_MAP``, says where every HF tensor lives in the NNX state and how
its layout changes (PyTorch linear weights are [out, in]; our kernels are [in, ...out]
with heads split out). Import streams tensor by tensor, layer by layer, straight into
each parameter's target sharding with ``jax.make_array_from_callback`` (each device
reads only the slices it holds from memory-mapped safetensors); no full host copy of
the model is ever made. Export gathers one layer of one tensor at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import logging
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.checkpoint.safetensors_io import TensorIndex, write_sharded
from eurollm_jax.fileio import write_json
from eurollm_jax.model.config import ModelConfig
from eurollm_jax.model.factory import abstract_model
from eurollm_jax.model.transformer import Transformer
from eurollm_jax.parallel.rules import Rules, path_str, state_shardings


class CheckpointMismatchError(ValueError):
    """The tensors on disk do not match the model configuration."""


@dataclasses.dataclass(frozen=True)
class _Tensor:
    path: str  # dotted path in the NNX state
    hf_key: str  # HF tensor name; "{i}" is the layer index for stacked params
    to_jax: Callable[[np.ndarray, ModelConfig], np.ndarray]
    to_hf: Callable[[np.ndarray, ModelConfig], np.ndarray]
    hf_shape: Callable[[ModelConfig], tuple[int, ...]]

    @property
    def per_layer(self) -> bool:
        return "{i}" in self.hf_key


def _heads_in(n_heads):  # HF [n*Dh, D] -> [D, n, Dh]
    return lambda w, c: np.asarray(w).T.reshape(c.d_model, n_heads(c), c.head_dim)


def _heads_out(n_heads):  # [D, n, Dh] -> HF [n*Dh, D]
    return lambda w, c: np.asarray(w).reshape(c.d_model, n_heads(c) * c.head_dim).T


_T = lambda w, c: np.asarray(w).T  # noqa: E731
_ID = lambda w, c: np.asarray(w)  # noqa: E731
_Q = lambda c: c.num_heads  # noqa: E731
_KV = lambda c: c.num_kv_heads  # noqa: E731

_TENSOR_MAP: tuple[_Tensor, ...] = (
    _Tensor("embed_tokens", "model.embed_tokens.weight", _ID, _ID, lambda c: (c.vocab_size, c.d_model)),
    _Tensor("norm.scale", "model.norm.weight", _ID, _ID, lambda c: (c.d_model,)),
    _Tensor("lm_head", "lm_head.weight", _T, _T, lambda c: (c.vocab_size, c.d_model)),
    _Tensor("layers.input_layernorm.scale", "model.layers.{i}.input_layernorm.weight", _ID, _ID,
            lambda c: (c.d_model,)),
    _Tensor("layers.post_attention_layernorm.scale", "model.layers.{i}.post_attention_layernorm.weight",
            _ID, _ID, lambda c: (c.d_model,)),
    _Tensor("layers.self_attn.q_proj", "model.layers.{i}.self_attn.q_proj.weight", _heads_in(_Q),
            _heads_out(_Q), lambda c: (c.num_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.k_proj", "model.layers.{i}.self_attn.k_proj.weight", _heads_in(_KV),
            _heads_out(_KV), lambda c: (c.num_kv_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.v_proj", "model.layers.{i}.self_attn.v_proj.weight", _heads_in(_KV),
            _heads_out(_KV), lambda c: (c.num_kv_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.o_proj", "model.layers.{i}.self_attn.o_proj.weight",
            lambda w, c: np.asarray(w).T.reshape(c.num_heads, c.head_dim, c.d_model),
            lambda w, c: np.asarray(w).reshape(c.num_heads * c.head_dim, c.d_model).T,
            lambda c: (c.d_model, c.num_heads * c.head_dim)),
    _Tensor("layers.mlp.gate_proj", "model.layers.{i}.mlp.gate_proj.weight", _T, _T,
            lambda c: (c.ffn_dim, c.d_model)),
    _Tensor("layers.mlp.up_proj", "model.layers.{i}.mlp.up_proj.weight", _T, _T,
            lambda c: (c.ffn_dim, c.d_model)),
    _Tensor("layers.mlp.down_proj", "model.layers.{i}.mlp.down_proj.weight", _T, _T,
            lambda c: (c.d_model, c.ffn_dim)),
)
# Tensors some checkpoints carry that hold no learned state.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def _tensors_for(cfg: ModelConfig) -> list[_Tensor]:
    return [t for t in _TENSOR_MAP if not (cfg.tie_embeddings and t.path == "lm_head")]


def expected_hf_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every HF tensor name a checkpoint of ``cfg`` must hold, with its shape."""
    shapes = {}
    for t in _tensors_for(cfg):
        keys = [t.hf_key.format(i=i) for i in range(cfg.num_layers)] if t.per_layer else [t.hf_key]
        for key in keys:
            shapes[key] = t.hf_shape(cfg)
    return shapes


def _listing(names, limit=12) -> str:
    names = sorted(names)
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_checkpoint(index: TensorIndex, cfg: ModelConfig) -> None:
    """Raise CheckpointMismatchError naming every missing, extra or mis-shaped tensor."""
    expected = expected_hf_shapes(cfg)
    present = set(index.keys())
    missing = set(expected) - present
    extra = {
        k for k in present - set(expected)
        if not k.endswith(_IGNORED_SUFFIXES) and not (cfg.tie_embeddings and k == "lm_head.weight")
    }
    misshaped = [
        f"{k} (file {index.shape(k)}, config expects {expected[k]})"
        for k in sorted(present & set(expected)) if index.shape(k) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors: {_listing(missing)}")
    if extra:
        problems.append(f"unexpected tensors: {_listing(extra)}")
    if misshaped:
        problems.append(f"mis-shaped tensors: {_listing(misshaped)}")
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {index.directory} does not match its config "
            f"(layers={cfg.num_layers}, d_model={cfg.d_model}, heads={cfg.num_heads}/"
            f"{cfg.num_kv_heads}, vocab={cfg.vocab_size}): " + "; ".join(problems)
        )


def resolve_checkpoint_dir(path_or_repo: str, cache_dir: str | None = None) -> str:
    """A local directory holding config.json, from a path or a repo id in a local HF cache.

    Never downloads: a repo id must already be in ``cache_dir`` (default: $HF_HUB_CACHE or
    ~/.cache/huggingface/hub), e.g. fetched with ``huggingface-cli download`` elsewhere.
    """
    if os.path.isdir(path_or_repo):
        return path_or_repo
    cache = cache_dir or os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    repo_dir = os.path.join(cache, "models--" + path_or_repo.replace("/", "--"))
    snapshots = os.path.join(repo_dir, "snapshots")
    if os.path.isdir(snapshots):
        ref = os.path.join(repo_dir, "refs", "main")
        if os.path.exists(ref):
            with open(ref) as f:
                candidate = os.path.join(snapshots, f.read().strip())
            if os.path.isdir(candidate):
                return candidate
        found = sorted(glob.glob(os.path.join(snapshots, "*")))
        if found:
            return found[-1]
    raise FileNotFoundError(
        f"{path_or_repo!r} is neither a directory nor a model in the local cache {cache}. "
        f"Nothing is downloaded at run time: fetch it on a machine with network access "
        f"(e.g. `huggingface-cli download {path_or_repo} --local-dir DIR`) and pass DIR."
    )


def load_hf_config(path: str, **overrides) -> ModelConfig:
    config_path = os.path.join(path, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{path}: no config.json; is this a Hugging Face model directory?")
    with open(config_path) as f:
        return ModelConfig.from_hf_config(json.load(f), **overrides)


def load_hf_checkpoint(
    path: str,
    *,
    mesh=None,
    param_dtype: str = "float32",
    compute_dtype: str | None = None,
    rules: Rules | None = None,
    cache_dir: str | None = None,
    **config_overrides,
) -> Transformer:
    """Load a transformers Llama/EuroLLM checkpoint directory as a sharded model.

    ``path`` is a local directory (config.json + safetensors) or a repo id already in
    the local HF cache. ``mesh`` defaults to a single device. Other model fields
    (``scan_layers``, ``attention_impl``, ``remat_policy``...) can be overridden.
    """
    path = resolve_checkpoint_dir(path, cache_dir)
    overrides = dict(config_overrides, param_dtype=param_dtype)
    if compute_dtype is not None:
        overrides["compute_dtype"] = compute_dtype
    cfg = load_hf_config(path, **overrides)
    index = TensorIndex(path)
    check_checkpoint(index, cfg)

    if mesh is None:
        from eurollm_jax.parallel.mesh import create_mesh

        mesh = create_mesh((1, 1, 1), devices=jax.devices()[:1])
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    shardings = state_shardings(abstract_state, mesh, rules)
    by_path = {t.path: t for t in _tensors_for(cfg)}
    target_dtype = np.dtype(cfg.weight_dtype)

    def load(path_tuple, variable, sharding_var):
        name = path_str(path_tuple)
        if name not in by_path:
            raise CheckpointMismatchError(f"no checkpoint mapping for model parameter {name}")
        spec = by_path[name]
        shape = variable.get_value().shape

        @functools.lru_cache(maxsize=2)
        def layer_tensor(key):
            return spec.to_jax(index.get(key), cfg)

        def callback(idx):
            if spec.per_layer:
                layers = range(*idx[0].indices(shape[0]))
                parts = [layer_tensor(spec.hf_key.format(i=i))[idx[1:]] for i in layers]
                return np.stack(parts).astype(target_dtype)
            return layer_tensor(spec.hf_key)[idx].astype(target_dtype)

        array = jax.make_array_from_callback(shape, sharding_var.get_value(), callback)
        layer_tensor.cache_clear()
        return variable.replace(array)

    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    state = jax.tree_util.tree_map_with_path(load, abstract_state, shardings, is_leaf=is_var)
    logging.info("loaded %s (%d tensors) into mesh %s", path, len(list(index.keys())), dict(mesh.shape))
    return nnx.merge(graphdef, state)


def _gather(array: jax.Array) -> np.ndarray:
    if jax.process_count() > 1 and not array.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(jax.device_get(array))


def save_hf_checkpoint(
    model: Transformer,
    path: str,
    *,
    dtype: str | None = None,
    max_shard_bytes: int = 5 * 2**30,
) -> list[str]:
    """Write ``config.json`` + safetensors that transformers' LlamaForCausalLM loads.

    ``dtype`` defaults to the parameter dtype ("bfloat16" halves the size). Shards above
    ``max_shard_bytes`` get a ``model.safetensors.index.json``. On multi-host all
    processes must call this (they take part in gathers); only process 0 writes.
    """
    cfg: ModelConfig = model.cfg
    dtype = dtype or cfg.param_dtype
    np_dtype = np.dtype(jnp.dtype(dtype))
    state = nnx.state(model, nnx.Param)
    flat = {
        path_str(k): v.get_value()
        for k, v in jax.tree_util.tree_flatten_with_path(
            state, is_leaf=lambda x: isinstance(x, nnx.Variable)
        )[0]
    }
    tensors = _tensors_for(cfg)
    specs, sources = [], {}
    for t in tensors:
        if t.path not in flat:
            raise CheckpointMismatchError(f"model has no parameter {t.path}")
        keys = [(t.hf_key.format(i=i), i) for i in range(cfg.num_layers)] if t.per_layer else [(t.hf_key, None)]
        for key, layer in keys:
            specs.append((key, np_dtype, t.hf_shape(cfg)))
            sources[key] = (t, layer)

    def fetch(key):
        t, layer = sources[key]
        array = flat[t.path]
        value = _gather(array[layer] if layer is not None else array)
        return t.to_hf(value.astype(np.float32) if value.dtype != np_dtype else value, cfg).astype(np_dtype)

    if jax.process_index() != 0:
        for key, _, _ in specs:  # take part in the collective gathers
            fetch(key)
        return []
    os.makedirs(path, exist_ok=True)
    names = write_sharded(path, specs, fetch, max_shard_bytes=max_shard_bytes)
    write_json(os.path.join(path, "config.json"), cfg.to_hf_config(torch_dtype=dtype), sort_keys=False)
    write_json(os.path.join(path, "generation_config.json"),
               {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id})
    return names
