"""Scoring and activation capture through the TPU kernel choice (attention_impl="auto" on a
"tpu" platform, splash in Pallas interpret mode on CPU): short buckets (16, 32, 64) run the
reference kernel, longer ones splash padded to a multiple of 128, and both give the
reference kernel's results."""

import logging

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eurollm_jax.inference import capture_activations, loglikelihood
from eurollm_jax.model import ModelConfig, abstract_model, create_model
from eurollm_jax.model import attention as attn
from eurollm_jax.model import transformer as transformer_mod

CFG = ModelConfig(
    vocab_size=128, d_model=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
    ffn_dim=96, max_seq_len=512, compute_dtype="float32", param_dtype="float32",
    attention_impl="xla",
)


@pytest.fixture
def on_tpu(monkeypatch):
    """The platform reads as TPU; splash runs interpreted and records the lengths it saw."""
    pytest.importorskip("jax.experimental.pallas.ops.tpu.splash_attention")
    for mod in (attn, transformer_mod):
        monkeypatch.setattr(mod, "current_platform", lambda: "tpu")
    ran = []
    real = attn.splash_attention

    def interpreted(q, k, v, mask):
        ran.append(q.shape[1])
        return real(q, k, v, mask, interpret=True)

    monkeypatch.setattr(attn, "splash_attention", interpreted)
    attn._LOGGED.clear()
    yield ran
    attn._LOGGED.clear()


@pytest.fixture(scope="module")
def models():
    ref = create_model(CFG, seed=6)
    auto = nnx.merge(nnx.graphdef(abstract_model(CFG.replace(attention_impl="auto"))),
                     nnx.state(ref))
    return auto, ref


def _ids(n, seed):
    return np.random.default_rng(seed).integers(3, CFG.vocab_size, size=n).tolist()


def test_scoring_on_tpu_kernels_matches_reference(on_tpu, models, caplog):
    auto, ref = models
    # bucket 16, 64 and 256 (200 tokens): splash refused every one of them before
    requests = [([1] + _ids(5, 0), _ids(4, 1)), ([1] + _ids(40, 2), _ids(9, 3)),
                ([1] + _ids(150, 4), _ids(50, 5))]
    with caplog.at_level(logging.INFO, logger="eurollm_jax.model.attention"):
        got = loglikelihood(auto, requests, max_batch_tokens=64)  # one row per batch
    want = loglikelihood(ref, requests, max_batch_tokens=64)
    assert sorted(set(on_tpu)) == [256]  # splash for the 256 bucket only
    assert "row of 16 < 128" in caplog.text and "row of 64 < 128" in caplog.text
    assert "padded 200 -> 256" not in caplog.text  # rows arrive padded to the bucket: 256
    for g, w in zip(got, want):
        # fp32 end to end; kernels differ by reassociation only, a mask error is O(1)
        np.testing.assert_allclose(g.token_logprobs, w.token_logprobs, rtol=0,
                                   atol=1e-4 * max(1.0, np.abs(w.token_logprobs).max()))
        assert g.is_greedy == w.is_greedy


def test_capture_on_tpu_kernels_matches_reference(on_tpu, models):
    auto, ref = models
    prompts = [[1] + _ids(20, 6), [1] + _ids(180, 7)]
    got = capture_activations(auto, prompts, [0, -1], pooling="all", max_batch_tokens=256)
    want = capture_activations(ref, prompts, [0, -1], pooling="all", max_batch_tokens=256)
    assert 256 in on_tpu
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4 * float(jnp.abs(w).max()))
