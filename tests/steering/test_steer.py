"""Steering through the model's intervention inputs: a known direction moves the intended
logit monotonically with eps; vectors, the cached collection, the lm-eval path."""

import os

import numpy as np
import pytest

from eurollm_jax.inference import Engine, capture_activations
from eurollm_jax.model import ModelConfig, create_model
from eurollm_jax.steering import (
    caa_vector,
    collect_residual_norms,
    collect_states,
    steering_inputs,
)
from eurollm_jax.steering import collect as collect_lib
from eurollm_jax.steering.evaluation import mc_accuracy_direct

VOCAB = 64


def tiny_cfg(**kw):
    base = dict(vocab_size=VOCAB, d_model=32, num_layers=2, num_heads=4, num_kv_heads=2,
                head_dim=8, ffn_dim=64, max_seq_len=64, compute_dtype="float32",
                initializer_range=0.2)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="module")
def engine():
    return Engine(create_model(tiny_cfg(), seed=0))


def test_known_direction_moves_the_intended_logit_monotonically(engine):
    model = engine.model
    token = 17
    # After the last layer the residual goes through the final RMSNorm (scale s) and the
    # head (column w_t): with v = s * w_t, logit_t(eps) = <h + eps v, v> / rms(h + eps v),
    # whose derivative has the sign of |h|^2 |v|^2 - <h, v>^2 >= 0 (Cauchy-Schwarz).
    w_t = np.asarray(model.lm_head_kernel())[:, token]
    s = np.asarray(model.norm.scale[...])
    v = s * w_t
    last = engine.cfg.num_layers - 1
    prompt = [1, 5, 9, 33, 12, 40]
    norms = collect_residual_norms(engine, [prompt])
    logits_t, margins = [], []
    for eps in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0):
        iv = steering_inputs(engine.cfg, {last: v}, eps, dict(enumerate(norms)))
        out = engine.generate([prompt], max_new_tokens=1, return_logits=True, interventions=iv)
        logit = np.asarray(out[0].logits)[0]
        logits_t.append(float(logit[token]))
        margins.append(float(logit[token] - np.delete(logit, token).max()))
    assert np.all(np.diff(logits_t) > 0), logits_t
    assert margins[0] < 0 < margins[-1]  # not the greedy token unsteered, the greedy one at 4x
    # the same direction at eps = 0 is exactly the unsteered program
    plain = engine.generate([prompt], max_new_tokens=1, return_logits=True)
    assert np.asarray(plain[0].logits)[0][token] == pytest.approx(logits_t[0], abs=1e-5)


def test_steering_inputs_scale_by_layer_norm(engine):
    cfg = engine.cfg
    rng = np.random.default_rng(0)
    v0, v1 = rng.normal(size=32), rng.normal(size=32)
    iv = steering_inputs(cfg, {0: v0, 1: v1}, 0.5, {0: 2.0, 1: 8.0})
    np.testing.assert_allclose(np.linalg.norm(iv, axis=1), [1.0, 4.0], rtol=1e-5)
    np.testing.assert_allclose(iv[1] / 4.0, v1 / np.linalg.norm(v1), rtol=1e-5)
    assert steering_inputs(cfg, {0: v0}, 0.0, {0: 1.0}) is None
    with pytest.raises(ValueError, match="residual norm"):
        steering_inputs(cfg, {1: v1}, 1.0, {0: 1.0})


def test_caa_is_the_unit_mean_difference():
    H = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(caa_vector(H, y), np.array([2.0, -2.0]) / np.sqrt(8), rtol=1e-6)
    with pytest.raises(ValueError, match="both"):
        caa_vector(H, np.ones(4))


def test_collection_is_cached_on_disk(engine, tmp_path):
    prompts = [[1, 5, 6, 7], [1, 9, 10], [1, 11, 12, 13, 14]]
    got = collect_states(engine, prompts, pooling="mean", cache_dir=str(tmp_path))
    want = capture_activations(engine, prompts, [0, 1], pooling="mean")
    np.testing.assert_allclose(got, want, atol=1e-6)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("states-")
    # a hit reads the file back (poison it to prove it)
    path = os.path.join(tmp_path, files[0])
    np.save(path, np.full_like(got, 7.0))
    assert (collect_states(engine, prompts, pooling="mean", cache_dir=str(tmp_path)) == 7.0).all()
    # another model (same shapes, other weights) gets another key
    other = Engine(create_model(tiny_cfg(), seed=1))
    assert collect_lib.model_fingerprint(other) != collect_lib.model_fingerprint(engine)
    collect_states(other, prompts, pooling="mean", cache_dir=str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2
    with pytest.raises(ValueError, match="pooling"):
        collect_states(engine, prompts, pooling="all")


def test_lm_eval_backend_steered_accuracy_equals_direct_scoring(engine, tmp_path):
    pytest.importorskip("lm_eval")
    from eurollm_jax.steering.evaluation import mc_accuracy_lm_eval, write_mc_task
    from eurollm_jax.tokenizer import ByteTokenizer

    byte_engine = Engine(create_model(tiny_cfg(vocab_size=264), seed=2), ByteTokenizer())
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    items = [{"context": "", "choices": [" ".join(rng.choice(words, 2)) for _ in range(3)],
              "label": int(rng.integers(3))} for _ in range(12)]
    write_mc_task(str(tmp_path), items)
    v = rng.normal(size=32)
    for iv in (None, steering_inputs(byte_engine.cfg, {1: v}, 3.0, {1: 1.0})):
        direct = mc_accuracy_direct(byte_engine, items, iv)
        assert mc_accuracy_lm_eval(byte_engine, str(tmp_path), iv) == pytest.approx(direct)
    # the vector changes the scores (otherwise the equality above proves little)
    from eurollm_jax.inference import loglikelihood

    req = [([1], byte_engine.encode("alpha beta", add_bos=False))]
    assert loglikelihood(byte_engine, req)[0].logprob != pytest.approx(
        loglikelihood(byte_engine, req, interventions=iv)[0].logprob, abs=1e-3)
