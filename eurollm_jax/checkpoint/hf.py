"""Hugging Face (transformers ``LlamaForCausalLM``) checkpoint import and export.

One table, ``_TENSOR_MAP``, says where every HF tensor lives in the NNX state and how
its layout changes (PyTorch linear weights are [out, in]; our kernels are [in, ...out]
with heads split out); each layout change is defined on a block of HF rows, not only
on a whole tensor.

Import streams: for each parameter, every process works out the distinct shards its
addressable devices hold (replicas share one), reads each needed HF tensor row once, in
bounded chunks (``os.pread``, no memory map left resident), converts each chunk to our
layout and copies it into the shards it overlaps, then builds the array with
``jax.make_array_from_callback`` handing each device its shard. No device gets a full
tensor it does not hold, no tensor is read twice, and no full host copy of the model is
made: host memory beyond the device buffers is one parameter's local shards plus one
chunk. Export gathers one layer of one tensor at a time.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import mmap
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eurollm_jax.checkpoint.hf_tokenizer import write_hf_tokenizer
from eurollm_jax.checkpoint.safetensors_io import TensorIndex, write_sharded
from eurollm_jax.fileio import write_json
from eurollm_jax.model.config import ModelConfig, canonical_dtype
from eurollm_jax.model.factory import abstract_model
from eurollm_jax.model.transformer import Transformer
from eurollm_jax.parallel.rules import Rules, path_str, state_shardings
from eurollm_jax.tokenizer.tokenizer import Tokenizer


class CheckpointMismatchError(ValueError):
    """The tensors on disk do not match the model configuration."""


Range = tuple[int, int]  # [start, stop) along one axis


class _Layout:
    """How one HF tensor's leading-axis rows land in our layout.

    ``place(r0, r1)`` says which box of our tensor HF rows ``r0:r1`` fill (one range per
    axis of our tensor); ``convert(block)`` turns those rows into that box's values.
    ``row_unit`` is the granularity rows can be split at (a head's ``head_dim`` rows for
    layouts that split rows into heads). Import streams rows through these two methods
    chunk by chunk, so no layout change ever needs the whole tensor; ``to_hf`` is the
    inverse on a whole (gathered) tensor for export.
    """

    def row_unit(self, cfg: ModelConfig) -> int:
        return 1

    def tile_rows(self, cfg: ModelConfig) -> int | None:
        """Rows converted and copied at a time within a read chunk (None: the whole
        chunk). Layouts that transpose copy 16+ source rows at a time, so every write
        to the destination is at least a cache line long: ~4x faster than one strided
        whole-chunk copy."""
        return None

    def place(self, r0: int, r1: int, jax_shape: tuple[int, ...], cfg: ModelConfig) -> tuple[Range, ...]:
        raise NotImplementedError

    def convert(self, block: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        raise NotImplementedError

    def to_hf(self, w: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        raise NotImplementedError

    def to_jax(self, w: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        """The whole HF tensor in our layout (tests and reference use)."""
        return self.convert(np.asarray(w), cfg)


class _Identity(_Layout):  # same layout: HF rows are our rows
    def place(self, r0, r1, jax_shape, cfg):
        return ((r0, r1),) + tuple((0, n) for n in jax_shape[1:])

    def convert(self, block, cfg):
        return block

    def to_hf(self, w, cfg):
        return np.asarray(w)


class _Transpose(_Layout):  # HF [out, in] -> [in, out]: HF rows are our columns
    def tile_rows(self, cfg):
        return 16

    def place(self, r0, r1, jax_shape, cfg):
        return ((0, jax_shape[0]), (r0, r1))

    def convert(self, block, cfg):
        return block.T

    def to_hf(self, w, cfg):
        return np.asarray(w).T


class _HeadsIn(_Layout):  # HF [n*Dh, D] -> [D, n, Dh]: HF rows are (head, dim) pairs
    def __init__(self, n_heads: Callable[[ModelConfig], int]):
        self.n_heads = n_heads

    def row_unit(self, cfg):
        return cfg.head_dim

    def tile_rows(self, cfg):
        return cfg.head_dim

    def place(self, r0, r1, jax_shape, cfg):
        return ((0, cfg.d_model), (r0 // cfg.head_dim, r1 // cfg.head_dim), (0, cfg.head_dim))

    def convert(self, block, cfg):
        return block.T.reshape(cfg.d_model, block.shape[0] // cfg.head_dim, cfg.head_dim)

    def to_hf(self, w, cfg):
        return np.asarray(w).reshape(cfg.d_model, self.n_heads(cfg) * cfg.head_dim).T


class _HeadsOut(_Layout):  # o_proj: HF [D, n*Dh] -> [n, Dh, D]: HF rows are our last axis
    def tile_rows(self, cfg):
        return 16

    def place(self, r0, r1, jax_shape, cfg):
        return ((0, cfg.num_heads), (0, cfg.head_dim), (r0, r1))

    def convert(self, block, cfg):
        return block.T.reshape(cfg.num_heads, cfg.head_dim, block.shape[0])

    def to_hf(self, w, cfg):
        return np.asarray(w).reshape(cfg.num_heads * cfg.head_dim, cfg.d_model).T


@dataclasses.dataclass(frozen=True)
class _Tensor:
    path: str  # dotted path in the NNX state
    hf_key: str  # HF tensor name; "{i}" is the layer index for stacked params
    layout: _Layout
    hf_shape: Callable[[ModelConfig], tuple[int, ...]]

    @property
    def per_layer(self) -> bool:
        return "{i}" in self.hf_key

    def to_jax(self, w: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        return self.layout.to_jax(w, cfg)

    def to_hf(self, w: np.ndarray, cfg: ModelConfig) -> np.ndarray:
        return self.layout.to_hf(w, cfg)


_ID, _T, _O = _Identity(), _Transpose(), _HeadsOut()
_Q = _HeadsIn(lambda c: c.num_heads)
_KV = _HeadsIn(lambda c: c.num_kv_heads)

_TENSOR_MAP: tuple[_Tensor, ...] = (
    _Tensor("embed_tokens", "model.embed_tokens.weight", _ID, lambda c: (c.vocab_size, c.d_model)),
    _Tensor("norm.scale", "model.norm.weight", _ID, lambda c: (c.d_model,)),
    _Tensor("lm_head", "lm_head.weight", _T, lambda c: (c.vocab_size, c.d_model)),
    _Tensor("layers.input_layernorm.scale", "model.layers.{i}.input_layernorm.weight", _ID,
            lambda c: (c.d_model,)),
    _Tensor("layers.post_attention_layernorm.scale", "model.layers.{i}.post_attention_layernorm.weight",
            _ID, lambda c: (c.d_model,)),
    _Tensor("layers.self_attn.q_proj", "model.layers.{i}.self_attn.q_proj.weight", _Q,
            lambda c: (c.num_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.k_proj", "model.layers.{i}.self_attn.k_proj.weight", _KV,
            lambda c: (c.num_kv_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.v_proj", "model.layers.{i}.self_attn.v_proj.weight", _KV,
            lambda c: (c.num_kv_heads * c.head_dim, c.d_model)),
    _Tensor("layers.self_attn.o_proj", "model.layers.{i}.self_attn.o_proj.weight", _O,
            lambda c: (c.d_model, c.num_heads * c.head_dim)),
    _Tensor("layers.mlp.gate_proj", "model.layers.{i}.mlp.gate_proj.weight", _T,
            lambda c: (c.ffn_dim, c.d_model)),
    _Tensor("layers.mlp.up_proj", "model.layers.{i}.mlp.up_proj.weight", _T,
            lambda c: (c.ffn_dim, c.d_model)),
    _Tensor("layers.mlp.down_proj", "model.layers.{i}.mlp.down_proj.weight", _T,
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


DEFAULT_CHUNK_BYTES = 64 * 2**20


def _box(index, shape) -> tuple[Range, ...]:
    """A device's index (a tuple of unit-step slices) as [start, stop) per axis."""
    if len(index) != len(shape):
        raise ValueError(f"shard index {index} does not match shape {shape}")
    box = []
    for sl, n in zip(index, shape):
        start, stop, step = sl.indices(n)
        if step != 1:
            raise ValueError(f"shard index {index} has a strided slice; shardings give unit steps")
        box.append((start, stop))
    return tuple(box)


def _overlap(a: tuple[Range, ...], b: tuple[Range, ...]) -> tuple[Range, ...] | None:
    out = tuple((max(x0, y0), min(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))
    return None if any(lo >= hi for lo, hi in out) else out


def _rel(box: tuple[Range, ...], origin: tuple[Range, ...]) -> tuple[slice, ...]:
    return tuple(slice(lo - o, hi - o) for (lo, hi), (o, _) in zip(box, origin))


class _Scratch:
    """One reusable read buffer for a whole load (a fresh 64 MiB buffer per chunk would
    cost an mmap and its page faults every time)."""

    def __init__(self):
        self._buf = np.empty(0, np.uint8)

    def get(self, nbytes: int) -> np.ndarray:
        if self._buf.size < nbytes:
            self._buf = np.empty(0, np.uint8)  # drop the old one first
            self._buf = np.empty(nbytes, np.uint8)
        return self._buf


def _stream_tensor(index: TensorIndex, key: str, layout: _Layout, cfg: ModelConfig,
                   jax_shape: tuple[int, ...], targets, chunk_bytes: int,
                   scratch: _Scratch | None = None) -> None:
    """Read HF tensor ``key`` once, in row chunks, into the boxes of ``targets``.

    ``targets`` is a list of (box in our layout, numpy buffer of that box's shape). A
    chunk of rows that no target needs is not read at all (multi-host: a host reads only
    what its devices hold). Each chunk is converted to our layout on its own and copied
    (and cast) into every box it overlaps, then its buffer is reused for the next one.
    """
    scratch = scratch or _Scratch()
    shape = index.shape(key)
    rows = shape[0]
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * index.dtype(key).itemsize
    unit = layout.row_unit(cfg)
    if rows % unit:
        raise CheckpointMismatchError(f"{key}: {rows} rows do not split into units of {unit}")
    step = max(unit, (chunk_bytes // max(row_bytes, 1)) // unit * unit)
    tile = layout.tile_rows(cfg) or step
    if tile % unit:
        raise ValueError(f"{key}: tile of {tile} rows does not split into units of {unit}")

    def hits(r0, r1):
        where = layout.place(r0, r1, jax_shape, cfg)
        return where, [(box, buf, inter) for box, buf in targets if (inter := _overlap(where, box)) is not None]

    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        if not hits(r0, r1)[1]:
            continue
        chunk = index.read_rows(key, r0, r1, out=scratch.get((r1 - r0) * row_bytes))
        for t0 in range(r0, r1, tile):
            t1 = min(r1, t0 + tile)
            where, found = hits(t0, t1)
            if found:
                block = layout.convert(chunk[t0 - r0:t1 - r0], cfg)
                for box, buf, inter in found:
                    buf[_rel(inter, box)] = block[_rel(inter, where)]
        del chunk


def _shard_buffer(shape, dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array in its own anonymous memory map.

    The data is page-aligned, so on CPU ``make_array_from_callback`` makes the devices'
    buffers alias it (zero copy; replicas share it) instead of copying each shard once
    more; numpy's own allocations are only 16-byte aligned. It is also not marked for
    transparent huge pages as numpy marks its large allocations: where the kernel
    compacts memory on such faults (THP defrag "madvise"), first-touching gigabytes of
    them costs several times the system time. Elsewhere it is copied to the device and
    unmapped once the array is built.
    """
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return np.frombuffer(mmap.mmap(-1, max(nbytes, 1)), np.uint8, count=nbytes).view(dtype).reshape(shape)


def _load_param(index: TensorIndex, spec: _Tensor, cfg: ModelConfig, shape: tuple[int, ...],
                sharding, dtype: np.dtype, chunk_bytes: int, scratch: _Scratch) -> jax.Array:
    """One parameter in ``sharding``: each distinct local shard is filled once, straight
    from disk, and handed to every local device that holds it (replicas share it)."""
    shards: dict[tuple[Range, ...], np.ndarray] = {}
    for device_index in sharding.addressable_devices_indices_map(shape).values():
        box = _box(device_index, shape)
        if box not in shards:
            shards[box] = _shard_buffer(tuple(hi - lo for lo, hi in box), dtype)
    if spec.per_layer:
        layer_shape = shape[1:]
        for layer in range(shape[0]):
            targets = [(box[1:], buf[layer - box[0][0]]) for box, buf in shards.items()
                       if box[0][0] <= layer < box[0][1]]
            if targets:
                _stream_tensor(index, spec.hf_key.format(i=layer), spec.layout, cfg, layer_shape,
                               targets, chunk_bytes, scratch)
    elif shards:
        _stream_tensor(index, spec.hf_key, spec.layout, cfg, shape, list(shards.items()), chunk_bytes,
                       scratch)

    def callback(device_index):
        return shards[_box(device_index, shape)]

    array = jax.make_array_from_callback(shape, sharding, callback, dtype=dtype)
    shards.clear()  # device buffers now own the data (copied, or aliased on CPU)
    return array


def load_hf_checkpoint(
    path: str,
    *,
    mesh=None,
    param_dtype="float32",
    compute_dtype=None,
    rules: Rules | None = None,
    cache_dir: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    **config_overrides,
) -> Transformer:
    """Load a transformers Llama/EuroLLM checkpoint directory as a sharded model.

    ``path`` is a local directory (config.json + safetensors) or a repo id already in
    the local HF cache. ``mesh`` defaults to a single device. Other model fields
    (``scan_layers``, ``attention_impl``, ``remat_policy``...) can be overridden; the
    dtypes take any spelling ``canonical_dtype`` accepts.

    Streaming: each process reads every tensor row it needs exactly once, ``chunk_bytes``
    at a time (at least one row, or one head's rows), converts the chunk to our layout
    and copies it into the local shards it overlaps; each distinct shard is built once
    and given to every local device that holds it. Host memory beyond the devices' own
    buffers is one parameter's local shards plus one chunk.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    path = resolve_checkpoint_dir(path, cache_dir)
    overrides = dict(config_overrides, param_dtype=param_dtype)
    if compute_dtype is not None:
        overrides["compute_dtype"] = compute_dtype
    cfg = load_hf_config(path, **overrides)

    if mesh is None:
        from eurollm_jax.parallel.mesh import create_mesh

        mesh = create_mesh((1, 1, 1), devices=jax.devices()[:1])
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    shardings = state_shardings(abstract_state, mesh, rules)
    by_path = {t.path: t for t in _tensors_for(cfg)}
    target_dtype = np.dtype(cfg.weight_dtype)
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731

    with TensorIndex(path) as index:
        check_checkpoint(index, cfg)
        scratch = _Scratch()

        def load(path_tuple, variable, sharding_var):
            name = path_str(path_tuple)
            if name not in by_path:
                raise CheckpointMismatchError(f"no checkpoint mapping for model parameter {name}")
            shape = tuple(variable.get_value().shape)
            array = _load_param(index, by_path[name], cfg, shape, sharding_var.get_value(),
                                target_dtype, chunk_bytes, scratch)
            return variable.replace(array)

        state = jax.tree_util.tree_map_with_path(load, abstract_state, shardings, is_leaf=is_var)
        logging.info("loaded %s (%d tensors, %.1f MiB read) into mesh %s", path, len(list(index.keys())),
                     index.bytes_read / 2**20, dict(mesh.shape))
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
    dtype=None,
    max_shard_bytes: int = 5 * 2**30,
    tokenizer=None,
) -> list[str]:
    """Write ``config.json`` + safetensors that transformers' LlamaForCausalLM loads.

    ``tokenizer`` (a ``Tokenizer``, or the path of a ``tokenizer.model``): also write the
    Hugging Face tokenizer files and the chat stop ids (``hf_tokenizer.write_hf_tokenizer``),
    so ``AutoTokenizer`` and ``transformers.pipeline`` load the directory.

    ``dtype`` defaults to the parameter dtype ("bfloat16" halves the size); any spelling
    ``canonical_dtype`` accepts works ("bfloat16", jnp.bfloat16, np.float32,
    jnp.dtype("bfloat16")). Shards above ``max_shard_bytes`` get a
    ``model.safetensors.index.json``. On multi-host all processes must call this (they
    take part in gathers); only process 0 writes.
    """
    cfg: ModelConfig = model.cfg
    dtype = canonical_dtype(cfg.param_dtype if dtype is None else dtype, what="save_hf_checkpoint dtype")
    if tokenizer is not None and not isinstance(tokenizer, Tokenizer):
        tokenizer = Tokenizer.load(os.fspath(tokenizer))  # before the (long) gathers: fail early
    if tokenizer is not None and tokenizer.vocab_size > cfg.vocab_size:
        raise CheckpointMismatchError(
            f"the tokenizer has {tokenizer.vocab_size} pieces but the model's vocabulary is "
            f"{cfg.vocab_size}: not this model's tokenizer"
        )
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
    if tokenizer is not None:
        write_hf_tokenizer(tokenizer, path)
    return names
