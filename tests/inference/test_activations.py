"""Activation capture and steering, against transformers with forward hooks."""

import contextlib

import numpy as np
import pytest

from eurollm_jax.inference import (
    capture_activations,
    generate,
    loglikelihood,
    residual_norms,
    steering_interventions,
)
from tests.inference.conftest import hf_greedy, hf_token_logprobs, random_prompts

pytestmark = pytest.mark.torch


@contextlib.contextmanager
def hf_layer_hooks(hf_model, add=None, record=None):
    """Forward hooks on every decoder layer: add add[l] to its output, record outputs."""
    import torch

    handles = []
    for layer_idx, layer in enumerate(hf_model.model.layers):

        def hook(module, inputs, output, layer_idx=layer_idx):
            hidden = output[0] if isinstance(output, tuple) else output
            if add is not None and add.get(layer_idx) is not None:
                hidden = hidden + torch.as_tensor(add[layer_idx], dtype=hidden.dtype)
            if record is not None:
                record.setdefault(layer_idx, []).append(hidden.detach().clone())
            return (hidden,) + tuple(output[1:]) if isinstance(output, tuple) else hidden

        handles.append(layer.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _hf_hidden(hf_model, ids, add=None):
    import torch

    record = {}
    with hf_layer_hooks(hf_model, add=add, record=record), torch.no_grad():
        hf_model(torch.tensor([ids]))
    return {k: v[0][0].numpy() for k, v in record.items()}  # layer -> [T, D]


def test_capture_matches_transformers_hidden_states(engine, hf_model):
    prompts = random_prompts([3, 11, 6])
    layers = [0, -1]
    last = capture_activations(engine, prompts, layers, pooling="last")
    mean = capture_activations(engine, prompts, layers, pooling="mean")
    full = capture_activations(engine, prompts, layers, pooling="all")
    assert last.shape == (3, 2, 64) and mean.shape == (3, 2, 64)
    for i, p in enumerate(prompts):
        ref = _hf_hidden(hf_model, p)
        for j, layer in enumerate((0, 1)):
            assert full[i].shape == (2, len(p), 64)
            np.testing.assert_allclose(full[i][j], ref[layer], atol=1e-4)
            np.testing.assert_allclose(last[i, j], ref[layer][-1], atol=1e-4)
            np.testing.assert_allclose(mean[i, j], ref[layer].mean(0), atol=1e-4)


def test_capture_textrandom_prompts(engine, tokenizer):
    acts = capture_activations(
        engine, ["Good morning", "The cat sat on the mat"], [1], pooling="last"
    )
    ids = tokenizer.encode("Good morning")
    direct = capture_activations(engine, [ids], [1], pooling="last")
    np.testing.assert_allclose(acts[0], direct[0], atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        capture_activations(engine, [ids], [1], pooling="max")
    with pytest.raises(ValueError, match="out of range"):
        capture_activations(engine, [ids], [2])


def test_steering_matches_transformers_hooks(engine, hf_model, jax_model):
    rng = np.random.default_rng(3)
    v0, v1 = rng.normal(size=64), rng.normal(size=64)
    norms = residual_norms(engine, random_prompts([8, 12, 5], seed=9), [0, 1])
    assert norms.shape == (2,) and (norms > 0).all()
    iv = steering_interventions(
        engine.cfg,
        {0: v0, -1: v1},
        eps={0: 0.5, -1: 0.4},
        normalize=True,
        reference_norms={0: norms[0], -1: norms[1]},
    )
    np.testing.assert_allclose(
        np.linalg.norm(iv, axis=1), [0.5 * norms[0], 0.4 * norms[1]], rtol=1e-5
    )
    add = {0: iv[0], 1: iv[1]}

    prompts = random_prompts([4, 9, 15], seed=4)
    steered = generate(jax_model, prompts, max_new_tokens=12, interventions=iv)
    plain = generate(jax_model, prompts, max_new_tokens=12)
    with hf_layer_hooks(hf_model, add=add):
        ref = hf_greedy(hf_model, prompts, 12)
    assert [list(o) + ([o.stop] if o.finish_reason == "stop" else []) for o in steered] == ref
    assert [list(o) for o in steered] != [list(o) for o in plain]

    ctx, cont = prompts[2], random_prompts([6], seed=5)[0][1:]
    res = loglikelihood(engine, [(ctx, cont)], interventions=iv)[0]
    with hf_layer_hooks(hf_model, add=add):
        want = hf_token_logprobs(hf_model, ctx + cont)[len(ctx) - 1 :]
    assert abs(res.logprob - sum(want)) <= 1e-4

    acts = capture_activations(engine, [ctx], [0, 1], pooling="all", interventions=iv)[0]
    ref_h = _hf_hidden(hf_model, ctx, add=add)
    np.testing.assert_allclose(acts[1], ref_h[1], atol=1e-4)


def test_per_row_interventions(engine, jax_model):
    prompts = random_prompts([5, 7, 3], seed=6)
    v = np.random.default_rng(0).normal(size=64) * 3
    iv = steering_interventions(engine.cfg, {1: v})
    per_row = np.stack(
        [np.zeros_like(iv), iv, np.zeros_like(iv)], axis=1
    )  # [L, B, D]: only row 1 steered
    mixed = generate(jax_model, prompts, max_new_tokens=8, interventions=per_row, ignore_eos=True)
    plain = generate(jax_model, prompts, max_new_tokens=8, ignore_eos=True)
    steered = generate(jax_model, prompts, max_new_tokens=8, interventions=iv, ignore_eos=True)
    assert [list(mixed[0]), list(mixed[1]), list(mixed[2])] == [
        list(plain[0]),
        list(steered[1]),
        list(plain[2]),
    ]
    assert list(steered[1]) != list(plain[1])
