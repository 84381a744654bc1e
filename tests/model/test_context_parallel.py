"""Context parallelism: rows split over the ``sequence`` mesh axis give the single-device
logits and gradients (fp32, 1e-5), ring and all-gather, alone and with fsdp/tensor, packed
rows and GQA; the ring really passes blocks around and the zigzag order balances work."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import eurollm_jax
from eurollm_jax.model.context_parallel import load_balance_permutation
from eurollm_jax.parallel import create_mesh
from tests.model.helpers import small_config

T = 64  # a multiple of 2 x 8: zigzag chunks for every sequence size tested


@pytest.fixture(scope="module")
def reference():
    cfg = small_config(compute_dtype="float32")  # 8 query heads over 2 KV heads (GQA)
    model = eurollm_jax.create_model(cfg, seed=3)
    rng = np.random.RandomState(0)
    ids = jnp.asarray(rng.randint(0, cfg.vocab_size, (4, T)), jnp.int32)
    seg = jnp.asarray(np.repeat([[1] * 21 + [2] * 30 + [3] * 13], 4, axis=0), jnp.int32)
    weights = jnp.asarray(rng.randn(4, T, cfg.vocab_size), jnp.float32)
    with jax.default_matmul_precision("highest"):
        logits, grads = _logits_and_grads(model, ids, seg, weights)
    return cfg, ids, seg, weights, logits, grads


def _loss(model, ids, seg, weights):
    logits = model(ids, segment_ids=seg)
    return jnp.sum(jax.nn.log_softmax(logits) * weights) / ids.size, logits


def _logits_and_grads(model, ids, seg, weights):
    fn = nnx.jit(nnx.value_and_grad(_loss, has_aux=True))
    (_, logits), grads = fn(model, ids, seg, weights)
    return np.asarray(logits), [np.asarray(g) for g in jax.tree.leaves(nnx.state(grads))]


SLOW = pytest.mark.slow


@pytest.mark.parametrize("shape, impl, balance, packed", [
    ((1, 1, 2, 1), "ring", True, True),
    pytest.param((1, 1, 4, 1), "ring", True, True, marks=SLOW),
    pytest.param((1, 1, 8, 1), "ring", True, False, marks=SLOW),
    ((1, 1, 8, 1), "allgather", True, True),
    pytest.param((1, 1, 4, 1), "ring", False, True, marks=SLOW),
    ((1, 2, 2, 2), "ring", True, True),
    pytest.param((2, 1, 2, 2), "allgather", False, True, marks=SLOW),
    pytest.param((1, 2, 4, 1), "ring", True, True, marks=SLOW),
    # 4-way tensor over 2 KV heads: KV heads replicated
    pytest.param((1, 1, 2, 4), "ring", True, True, marks=SLOW),
])
def test_sharded_sequence_equals_single_device(reference, shape, impl, balance, packed):
    cfg, ids, seg, weights, ref_logits, ref_grads = reference
    if not packed:
        seg = None
        with jax.default_matmul_precision("highest"):
            ref_logits, ref_grads = _logits_and_grads(
                eurollm_jax.create_model(cfg, seed=3), ids, None, weights)
    cfg = dataclasses.replace(cfg, context_parallel=impl, context_load_balance=balance)
    n = int(np.prod(shape))
    mesh = create_mesh(shape, devices=jax.devices()[:n])
    model = eurollm_jax.create_model(cfg, mesh=mesh, seed=3)
    with jax.set_mesh(mesh), jax.default_matmul_precision("highest"):
        logits, grads = _logits_and_grads(model, ids, seg, weights)
    scale = np.abs(ref_logits).max()
    assert np.abs(logits - ref_logits).max() <= 1e-5 * scale
    for g, r in zip(grads, ref_grads):
        assert np.abs(g - r).max() <= 1e-5 * max(np.abs(r).max(), 1e-12)


def _compiled_text(impl):
    cfg = small_config(compute_dtype="float32", context_parallel=impl)
    mesh = create_mesh((1, 1, 4, 1), devices=jax.devices()[:4])
    model = eurollm_jax.create_model(cfg, mesh=mesh, seed=0)
    ids = jnp.zeros((2, T), jnp.int32)
    with jax.set_mesh(mesh):
        return nnx.jit(lambda m, x: m(x)).lower(model, ids).compile().as_text()


def test_ring_passes_blocks_and_allgather_gathers():
    ring, gathered = _compiled_text("ring"), _compiled_text("allgather")
    assert "collective-permute" in ring
    assert "collective-permute" not in gathered and "all-gather" in gathered


def test_zigzag_order_balances_the_causal_work():
    n, t = 4, 64
    order = load_balance_permutation(t, n)
    assert sorted(order.tolist()) == list(range(t))
    blocks = order.reshape(n, t // n)
    # causal work of device i: sum over its queries of how many keys they see
    work = [(blocks[i] + 1).sum() for i in range(n)]
    assert max(work) == min(work)
    contiguous = [(np.arange(t).reshape(n, -1)[i] + 1).sum() for i in range(n)]
    assert max(contiguous) > 3 * min(contiguous)
    with pytest.raises(ValueError, match="multiple of 8"):
        load_balance_permutation(60, 4)


@pytest.mark.parametrize("shape, impl", [((1, 1, 2, 1), "ring"), ((1, 1, 4, 1), "allgather")])
def test_keys_folded_in_chunks_equal_the_reference_kernel(monkeypatch, shape, impl):
    from eurollm_jax.model import context_parallel as cp
    from eurollm_jax.model.attention import AttentionMask, xla_attention

    rng = np.random.RandomState(0)
    b, t, h, k, d = 2, 256, 4, 2, 16
    q = jnp.asarray(rng.randn(b, t, h, d), jnp.float32)
    key = jnp.asarray(rng.randn(b, t, k, d), jnp.float32)
    value = jnp.asarray(rng.randn(b, t, k, d), jnp.float32)
    slots = jnp.broadcast_to(jnp.arange(t), (b, t))
    seg = jnp.asarray(np.repeat([[1] * 100 + [2] * 156], b, axis=0))
    mask = AttentionMask(slots, slots, seg, seg)
    ref = np.asarray(xla_attention(q, key, value, mask))
    monkeypatch.setattr(cp, "KV_CHUNK", 32)  # 4 or 8 chunks per block
    mesh = create_mesh(shape, devices=jax.devices()[:int(np.prod(shape))])
    with jax.set_mesh(mesh), jax.default_matmul_precision("highest"):
        out = jax.jit(lambda a, b_, c: cp.context_parallel_attention(a, b_, c, mask, mesh,
                                                                    impl=impl))(q, key, value)
    assert np.abs(np.asarray(out) - ref).max() <= 1e-5 * np.abs(ref).max()
