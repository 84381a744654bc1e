"""The plain JAX yardstick computes the model's loss and gradients (so the benchmarks that
compare against it time the same work), and ``dense`` is the einsum it replaces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.model import create_model, dense
from eurollm_jax.model.plain_reference import plain_loss
from tests.model.helpers import small_config


def _model_loss(graphdef):
    def loss(params, tokens):
        logits = nnx.merge(graphdef, params)(tokens[:, :-1])
        target = jnp.take_along_axis(logits, tokens[:, 1:, None], axis=-1)[..., 0]
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - target)

    return loss


@pytest.mark.parametrize("tied", [False, True])
def test_plain_reference_matches_the_model_loss_and_gradients(tied):
    cfg = small_config(tie_embeddings=tied)
    model = create_model(cfg, seed=3)
    graphdef, params = nnx.split(model, nnx.Param)
    tokens = jnp.asarray(np.random.RandomState(0).randint(0, cfg.vocab_size, (2, 33)), jnp.int32)
    with jax.default_matmul_precision("highest"):
        ours, g_ours = jax.value_and_grad(_model_loss(graphdef))(params, tokens)
        plain, g_plain = jax.value_and_grad(plain_loss)(nnx.to_pure_dict(params), tokens, cfg)
    # fp32, the same arithmetic in a different order: errors of a few ulps of each value
    np.testing.assert_allclose(float(plain), float(ours), rtol=1e-5)
    flat_ours = jax.tree.leaves(nnx.to_pure_dict(g_ours))
    flat_plain = jax.tree.leaves(g_plain)
    assert len(flat_ours) == len(flat_plain)
    for a, b in zip(flat_ours, flat_plain):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max(), rtol=0)


def test_plain_reference_refuses_rope_scaling():
    cfg = small_config(rope_scaling="linear", rope_scaling_factor=2.0)
    params = nnx.to_pure_dict(nnx.state(create_model(cfg), nnx.Param))
    with pytest.raises(ValueError, match="RoPE without scaling"):
        plain_loss(params, jnp.zeros((1, 5), jnp.int32), cfg)


def test_dense_is_the_einsum_over_the_trailing_dims():
    rng = np.random.RandomState(1)
    x = rng.randn(2, 3, 4, 5).astype(np.float32)
    w = rng.randn(4, 5, 6).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        got = dense(jnp.asarray(x), jnp.asarray(w), contract=2)
    np.testing.assert_allclose(np.asarray(got), np.einsum("btij,ijk->btk", x, w), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="does not end in the kernel's input dims"):
        dense(jnp.asarray(x), jnp.asarray(w))


def test_forward_bench_times_the_plain_yardstick_beside_ours(capsys):
    from eurollm_jax.model import bench

    assert bench.main([
        "bench", "--batch=8", "--seq=16", "--iters=2", "--peer=plain",
        "--set", "vocab_size=128", "--set", "d_model=32", "--set", "num_layers=2",
        "--set", "num_heads=4", "--set", "num_kv_heads=2", "--set", "head_dim=8",
        "--set", "ffn_dim=64", "--set", "compute_dtype=float32",
    ]) == 0
    out = capsys.readouterr().out
    assert "plain JAX yardstick forward+backward:" in out
    assert "ratio eurollm_jax / plain JAX:" in out
