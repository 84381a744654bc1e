"""Sharded forward equals single-device forward; meshes that cannot work fail clearly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eurollm_jax
from eurollm_jax.parallel import ShardingError, create_mesh, logical_to_spec, resolve_mesh_shape
from tests.model.helpers import small_config


@pytest.fixture(scope="module")
def reference():
    cfg = small_config()
    model = eurollm_jax.create_model(cfg, seed=7)
    ids = jnp.asarray(np.random.RandomState(0).randint(0, cfg.vocab_size, (8, 32)), jnp.int32)
    seg = jnp.asarray(np.repeat([[1] * 20 + [2] * 12], 8, axis=0), jnp.int32)
    return cfg, model, ids, seg, np.asarray(model(ids, segment_ids=seg))


@pytest.mark.parametrize("shape", [(8, 1, 1), (1, 8, 1), (2, 2, 2), (1, 2, 4)])
def test_sharded_forward_equals_single_device(reference, shape):
    cfg, model, ids, seg, expected = reference
    mesh = create_mesh(shape)
    sharded = eurollm_jax.create_model(cfg, mesh=mesh, seed=7)
    # created directly sharded: every big kernel is split over some mesh axis when the mesh allows
    q_spec = sharded.layers.self_attn.q_proj[...].sharding.spec
    if shape[1] > 1:
        assert q_spec[1] == "fsdp"
    if shape[2] > 1:
        assert q_spec[2] == "tensor"
    for a, b in zip(jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(sharded))):
        np.testing.assert_array_equal(a, b)
    with jax.set_mesh(mesh):
        out = jax.jit(lambda m, x, s: m(x, segment_ids=s))(sharded, ids, seg)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5)


def test_mesh_that_cannot_shard_heads():
    cfg = small_config(num_heads=4, num_kv_heads=2, head_dim=16)
    with pytest.raises(ShardingError, match=r"'q_heads', size 4\) cannot be split over mesh axes \('tensor',\)"):
        eurollm_jax.create_model(cfg, mesh=create_mesh((1, 1, 8)))


def test_mesh_bigger_than_devices():
    with pytest.raises(ValueError, match="needs 16 devices but only 8 are available"):
        create_mesh((2, 4, 2))
    with pytest.raises(ValueError, match="at most one mesh axis may be -1"):
        resolve_mesh_shape((-1, -1, 1), 8)
    assert resolve_mesh_shape((2, -1, 2), 8) == (2, 2, 2)


def test_rule_table_resolution():
    mesh = create_mesh((2, 2, 2))
    assert logical_to_spec(("embed", "mlp"), (64, 96), mesh) == jax.sharding.PartitionSpec("fsdp", "tensor")
    assert logical_to_spec(("act_batch", "act_seq"), (8, 4), mesh) == jax.sharding.PartitionSpec(("data", "fsdp"), None)
    # KV heads and odd vocabularies fall back to replication instead of failing
    assert logical_to_spec(("vocab", "embed"), (301, 64), mesh) == jax.sharding.PartitionSpec(None, "fsdp")
