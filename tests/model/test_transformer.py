"""The decoder's own invariants: packing, scan vs loop, KV cache, interventions, remat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.model import create_model, positions_from_segments
from eurollm_jax.model.attention import AttentionMask, cudnn_attention, xla_attention
from tests.model.helpers import small_config


@pytest.fixture(scope="module")
def model():
    return create_model(small_config(), seed=1)


def _ids(shape, seed=0, vocab=301):
    return jnp.asarray(np.random.RandomState(seed).randint(0, vocab, shape), jnp.int32)


def test_packed_documents_equal_each_alone(model):
    lengths = [20, 7, 13]
    docs = [_ids((1, n), seed=i) for i, n in enumerate(lengths)]
    packed = jnp.concatenate(docs, axis=1)
    segments = jnp.concatenate([jnp.full((1, n), i + 1, jnp.int32) for i, n in enumerate(lengths)], axis=1)
    logits = model(packed, segment_ids=segments)
    start = 0
    for doc, n in zip(docs, lengths):
        alone = model(doc)
        np.testing.assert_allclose(logits[:, start:start + n], alone, atol=1e-5)
        start += n


def test_positions_restart_per_segment():
    seg = jnp.array([[1, 1, 1, 2, 2, 3, 0, 0]])
    np.testing.assert_array_equal(positions_from_segments(seg), [[0, 1, 2, 0, 1, 0, 0, 1]])


def test_scan_and_loop_share_params_and_agree(model):
    ids = _ids((2, 24))
    loop = nnx.merge(nnx.graphdef(create_model(small_config(scan_layers=False))), nnx.state(model))
    np.testing.assert_allclose(model(ids), loop(ids), atol=1e-5)


def test_cached_decoding_equals_full_recompute(model):
    b, prompt, new = 3, 9, 6
    ids = _ids((b, prompt + new), seed=3)
    full = model(ids)
    cache = model.init_cache(b, 32, dtype=jnp.float32)
    out = model.forward(ids[:, :prompt], cache=cache, cache_index=0)
    np.testing.assert_allclose(out.logits, full[:, :prompt], atol=1e-5)
    cache = out.cache
    for t in range(prompt, prompt + new):
        out = model.forward(ids[:, t:t + 1], cache=cache, cache_index=t)
        cache = out.cache
        np.testing.assert_allclose(out.logits[:, 0], full[:, t], atol=1e-5)


def test_left_padded_cache_matches_unpadded(model):
    ids = _ids((1, 10), seed=4)
    pad = 5
    padded = jnp.concatenate([jnp.zeros((1, pad), jnp.int32), ids], axis=1)
    seg = jnp.concatenate([jnp.zeros((1, pad), jnp.int32), jnp.ones((1, 10), jnp.int32)], axis=1)
    pos = jnp.concatenate([jnp.zeros((1, pad), jnp.int32), jnp.arange(10)[None]], axis=1)
    out = model.forward(padded, segment_ids=seg, positions=pos, cache=model.init_cache(1, 16, jnp.float32), cache_index=0)
    np.testing.assert_allclose(out.logits[:, pad:], model(ids), atol=1e-5)


def test_hidden_states_and_interventions(model):
    cfg = model.cfg
    ids = _ids((2, 12))
    base = model.forward(ids, capture_hidden=True)
    assert base.hidden_states.shape == (cfg.num_layers, 2, 12, cfg.d_model)
    zero = model.forward(ids, interventions=jnp.zeros((cfg.num_layers, cfg.d_model)), capture_hidden=True)
    np.testing.assert_allclose(zero.logits, base.logits, atol=1e-6)
    # A vector on the last layer shifts its output residual by exactly scale * v.
    v = jax.random.normal(jax.random.key(0), (cfg.d_model,))
    deltas = jnp.zeros((cfg.num_layers, cfg.d_model)).at[-1].set(v)
    scale = jnp.array([0.0, 0.5])
    steered = model.forward(ids, interventions=deltas, intervention_scale=scale, capture_hidden=True)
    np.testing.assert_allclose(steered.hidden_states[0], base.hidden_states[0], atol=1e-6)
    np.testing.assert_allclose(steered.hidden_states[-1] - base.hidden_states[-1],
                               jnp.broadcast_to(0.5 * v, (2, 12, cfg.d_model)), atol=1e-5)
    assert not np.allclose(steered.logits, base.logits, atol=1e-3)
    # A per-row [L, B, D] intervention only touches its row.
    per_row = jnp.zeros((cfg.num_layers, 2, cfg.d_model)).at[0, 1].set(v)
    rows = model.forward(ids, interventions=per_row)
    np.testing.assert_allclose(rows.logits[0], base.logits[0], atol=1e-6)
    assert not np.allclose(rows.logits[1], base.logits[1], atol=1e-3)
    with pytest.raises(ValueError, match="interventions must be"):
        model.forward(ids, interventions=jnp.zeros((3, cfg.d_model)))


@pytest.mark.parametrize("policy", ["full", "dots", "qkv_proj"])
def test_remat_policies_give_same_gradients(model, policy):
    ids = _ids((2, 16))
    remat = nnx.merge(nnx.graphdef(create_model(small_config(remat_policy=policy))), nnx.state(model))

    def loss(m):
        return jnp.mean(jax.nn.log_softmax(m(ids))[..., 0])

    g1 = nnx.grad(loss)(model)
    g2 = nnx.grad(loss)(remat)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fused_attention_path_matches_reference_masks():
    """The cudnn wrapper's mask semantics, checked through jax's xla fallback on CPU."""
    rng = np.random.RandomState(0)
    q = jnp.asarray(rng.randn(2, 16, 4, 8), jnp.float32)
    k = jnp.asarray(rng.randn(2, 16, 2, 8), jnp.float32)
    v = jnp.asarray(rng.randn(2, 16, 2, 8), jnp.float32)
    slots = jnp.broadcast_to(jnp.arange(16), (2, 16))
    seg = jnp.asarray([[1] * 5 + [2] * 11, [1] * 16])
    for mask in (AttentionMask(slots, slots), AttentionMask(slots, slots, seg, seg)):
        np.testing.assert_allclose(
            cudnn_attention(q, k, v, mask, implementation=None), xla_attention(q, k, v, mask), atol=1e-5
        )


def test_splash_attention_interpret_mode_matches_reference():
    splash = pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    del splash
    from eurollm_jax.model.attention import splash_attention

    rng = np.random.RandomState(1)
    q = jnp.asarray(rng.randn(1, 128, 4, 128), jnp.float32)
    k = jnp.asarray(rng.randn(1, 128, 2, 128), jnp.float32)
    v = jnp.asarray(rng.randn(1, 128, 2, 128), jnp.float32)
    slots = jnp.broadcast_to(jnp.arange(128), (1, 128))
    seg = jnp.asarray([[1] * 50 + [2] * 78])
    mask = AttentionMask(slots, slots, seg, seg)
    np.testing.assert_allclose(splash_attention(q, k, v, mask, interpret=True), xla_attention(q, k, v, mask), atol=2e-5)
