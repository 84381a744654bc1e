"""HF import streams: every tensor row is read once, in bounded chunks, and every device
gets only its own shard (replicas share one buffer); export dtype arguments."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eurollm_jax
from eurollm_jax.checkpoint import hf, safetensors_io
from eurollm_jax.parallel.mesh import create_mesh
from eurollm_jax.parallel.rules import path_str
from tests.model.helpers import small_config

CHUNK = 1000  # bytes: forces many chunks per tensor (rows are 64..384 bytes here)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(directory, model) of a small random model exported to HF format; every matrix
    divides over 8 devices on each mesh axis (vocab 304, 8 KV heads)."""
    model = eurollm_jax.create_model(small_config(vocab_size=304, num_kv_heads=8), seed=3)
    directory = str(tmp_path_factory.mktemp("hf"))
    eurollm_jax.save_hf_checkpoint(model, directory)
    return directory, model


class _Recorder:
    """Records read_rows calls and what each device's callback returned."""

    def __init__(self, monkeypatch):
        self.reads = []  # (key, start, stop, nbytes)
        self.placements = {}  # shape -> list of (sharding, device index, returned array)
        original_read = safetensors_io.TensorIndex.read_rows
        original_make = jax.make_array_from_callback

        def read_rows(index, key, start, stop, out=None):
            rows = original_read(index, key, start, stop, out=out)
            self.reads.append((key, start, stop, rows.nbytes))
            return rows

        def make_array_from_callback(shape, sharding, callback, dtype=None):
            returned = []

            def recording(device_index):
                value = callback(device_index)
                returned.append((device_index, value))
                return value

            array = original_make(shape, sharding, recording, dtype=dtype)
            self.placements.setdefault(tuple(shape), []).append((sharding, returned, array))
            return array

        monkeypatch.setattr(safetensors_io.TensorIndex, "read_rows", read_rows)
        monkeypatch.setattr(hf.jax, "make_array_from_callback", make_array_from_callback)


@pytest.mark.parametrize("mesh_shape", [(1, 8, 1), (1, 1, 8), (2, 1, 4)])
def test_each_row_read_once_and_each_device_gets_its_shard(saved, monkeypatch, mesh_shape):
    directory, reference = saved
    cfg = reference.cfg
    recorder = _Recorder(monkeypatch)
    model = eurollm_jax.load_hf_checkpoint(directory, mesh=create_mesh(mesh_shape), chunk_bytes=CHUNK,
                                           compute_dtype="float32")

    index = safetensors_io.TensorIndex(directory)
    units = {t.hf_key.format(i=i): t.layout.row_unit(cfg) for t in hf._tensors_for(cfg)
             for i in range(cfg.num_layers)}
    total = 0
    for key in index.keys():
        shape = index.shape(key)
        row_bytes = int(np.prod(shape[1:])) * index.dtype(key).itemsize
        ranges = sorted((start, stop) for k, start, stop, _ in recorder.reads if k == key)
        assert ranges, f"{key} never read"
        assert ranges[0][0] == 0 and ranges[-1][1] == shape[0], f"{key}: reads {ranges} miss rows"
        for (_, stop), (start, _) in zip(ranges, ranges[1:]):
            assert stop == start, f"{key}: rows read twice or skipped: {ranges}"
        # A chunk is at most CHUNK bytes, unless one head's rows (or one row) is larger.
        assert all(stop - start <= max(CHUNK // row_bytes, units[key]) for start, stop in ranges), key
        total += shape[0] * row_bytes
    assert sum(r[3] for r in recorder.reads) == total  # every tensor byte exactly once

    state = dict(jax.tree_util.tree_flatten_with_path(
        nnx.state(model, nnx.Param), is_leaf=lambda x: isinstance(x, nnx.Variable))[0])
    ref_state = {path_str(k): v for k, v in jax.tree_util.tree_flatten_with_path(
        nnx.state(reference, nnx.Param), is_leaf=lambda x: isinstance(x, nnx.Variable))[0]}
    assert len(state) == len(ref_state)
    placed = [p for group in recorder.placements.values() for p in group]
    assert len(placed) == len(state)
    sharded = 0
    for sharding, returned, array in placed:
        shard_shape = sharding.shard_shape(array.shape)
        # One callback per local device (JAX calls once for a fully replicated array)...
        assert len(returned) == (1 if sharding.is_fully_replicated else len(jax.devices()))
        distinct = {id(value) for _, value in returned}
        boxes = {hf._box(i, array.shape) for i, _ in returned}
        assert len(distinct) == len(boxes)  # ...but one buffer per distinct shard
        for _, value in returned:
            assert value.shape == shard_shape  # never the full tensor unless replicated
        sharded += shard_shape != array.shape
    assert sharded == len(state) - 3  # every parameter but the three norm scales is split
    for key, variable in state.items():
        np.testing.assert_array_equal(np.asarray(variable.get_value()),
                                      np.asarray(ref_state[path_str(key)].get_value()))


@pytest.mark.parametrize("spec", hf._TENSOR_MAP, ids=lambda t: t.path)
@pytest.mark.parametrize("chunk", [1, 100, 10**9])
def test_chunked_layout_equals_whole_tensor_layout(spec, chunk, tmp_path):
    cfg = small_config(num_heads=4, num_kv_heads=2, head_dim=16, d_model=48, ffn_dim=40, vocab_size=37)
    hf_shape = spec.hf_shape(cfg)
    w = np.random.RandomState(0).standard_normal(hf_shape).astype(np.float32)
    safetensors_io.save_file({"w": w}, str(tmp_path / "model.safetensors"))
    whole = spec.to_jax(w, cfg)
    np.testing.assert_array_equal(spec.to_hf(whole, cfg), w)  # export inverts import
    # Uneven boxes (as under multi-host) along every axis, including the head axis.
    boxes = [tuple((0, n // 3 + 1) if a == ax else (0, n) for a, n in enumerate(whole.shape))
             for ax in range(whole.ndim)]
    boxes.append(tuple((n // 2, n) for n in whole.shape))
    with safetensors_io.TensorIndex(str(tmp_path)) as index:
        targets = [(box, np.full([hi - lo for lo, hi in box], np.nan, np.float64)) for box in boxes]
        hf._stream_tensor(index, "w", spec.layout, cfg, whole.shape, targets, chunk)
        assert index.bytes_read == w.nbytes if chunk == 10**9 else index.bytes_read <= w.nbytes
    for box, buf in targets:
        np.testing.assert_array_equal(buf, whole[tuple(slice(lo, hi) for lo, hi in box)])


def test_host_reads_only_rows_its_devices_hold(tmp_path):
    cfg = small_config()
    spec = next(t for t in hf._TENSOR_MAP if t.path == "embed_tokens")
    w = np.arange(cfg.vocab_size * cfg.d_model, dtype=np.float32).reshape(cfg.vocab_size, cfg.d_model)
    safetensors_io.save_file({"w": w}, str(tmp_path / "model.safetensors"))
    row_bytes = cfg.d_model * 4
    with safetensors_io.TensorIndex(str(tmp_path)) as index:
        buf = np.empty((100, cfg.d_model), np.float32)
        hf._stream_tensor(index, "w", spec.layout, cfg, w.shape, [(((0, 100), (0, cfg.d_model)), buf)],
                          10 * row_bytes)
        assert index.bytes_read == 100 * row_bytes  # rows 100.. are never read
    np.testing.assert_array_equal(buf, w[:100])


def test_truncated_file_and_bad_arguments_fail_clearly(saved, tmp_path):
    directory, _ = saved
    with pytest.raises(ValueError, match="chunk_bytes must be positive"):
        eurollm_jax.load_hf_checkpoint(directory, chunk_bytes=0)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(directory):
        data = open(os.path.join(directory, name), "rb").read()
        if name.endswith(".safetensors"):
            data = data[: len(data) - 100]
        (broken / name).write_bytes(data)
    with pytest.raises(safetensors_io.SafetensorsError, match="truncated"):
        eurollm_jax.load_hf_checkpoint(str(broken))
    with safetensors_io.TensorIndex(directory) as index:
        with pytest.raises(safetensors_io.SafetensorsError, match="out of range"):
            index.read_rows("model.norm.weight", 0, 10**6)
        with pytest.raises(ValueError, match="uint8 buffer of >= 256 bytes"):
            index.read_rows("model.norm.weight", 0, 64, out=np.empty(8, np.uint8))


def test_bench_writes_a_loadable_checkpoint_and_measures_it(tmp_path):
    from eurollm_jax.checkpoint import bench

    cfg = bench.bench_config(2, "tiny")
    nbytes = bench.write_random_checkpoint(cfg, str(tmp_path), dtype="bfloat16", max_shard_bytes=2**20,
                                           chunk_rows=100)
    assert nbytes == cfg.param_count() * 2
    with safetensors_io.TensorIndex(str(tmp_path)) as index:
        assert dict((k, index.shape(k)) for k in index.keys()) == hf.expected_hf_shapes(cfg)
        embed = np.asarray(index.get("model.embed_tokens.weight"), np.float32)
        norm = np.asarray(index.get("model.norm.weight"), np.float32)
    assert 0.015 < embed.std() < 0.025 and abs(norm.mean() - 1) < 0.05
    assert len(np.unique(embed[:100], axis=0)) == 100  # chunks are not repeats of each other
    result = bench.measure(str(tmp_path), (1, 4, 2), "float32", devices=8)
    assert result["devices"] == 8 and result["seconds"] > 0
    norms = (2 * cfg.num_layers + 1) * cfg.d_model  # replicated on all 8; the rest is split
    assert result["model_mb"] * 2**20 == (cfg.param_count() - norms) * 4 + norms * 4 * 8


@pytest.mark.parametrize("dtype", ["bfloat16", jnp.bfloat16, np.float32, jnp.dtype("bfloat16"), "float32"])
def test_export_dtype_accepts_jax_and_numpy_dtypes(saved, dtype, tmp_path):
    _, model = saved
    eurollm_jax.save_hf_checkpoint(model, str(tmp_path / "out"), dtype=dtype)
    name = np.dtype(jnp.dtype(dtype)).name
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["torch_dtype"] == name
    with safetensors_io.TensorIndex(str(tmp_path / "out")) as index:
        assert index.dtype("model.embed_tokens.weight") == np.dtype(jnp.dtype(dtype))
    loaded = eurollm_jax.load_hf_checkpoint(str(tmp_path / "out"), param_dtype="float32")
    np.testing.assert_allclose(np.asarray(loaded.embed_tokens[...]), np.asarray(model.embed_tokens[...]),
                               rtol=2**-8 if name == "bfloat16" else 0)


def test_donating_loaded_params_leaves_replicas_intact(saved):
    # On CPU the loaded shards alias host buffers that replicas share; a donated update
    # must still give every replica x + 1 (an in-place write into a shared buffer would
    # apply the update twice to one replica, or change the other).
    directory, _ = saved
    model = eurollm_jax.load_hf_checkpoint(directory, mesh=create_mesh((2, 1, 4)))
    state = nnx.state(model, nnx.Param)
    before = [np.asarray(x) for x in jax.tree.leaves(state)]
    step = jax.jit(lambda s: jax.tree.map(lambda x: x + 1, s), donate_argnums=0)
    after = step(state)
    for old, new in zip(before, jax.tree.leaves(after)):
        for shard in new.addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), old[shard.index] + 1)
