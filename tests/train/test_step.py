"""The pure train step: accumulation, sharding invariance, masking, chunked loss, NaN guard."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eurollm_jax.parallel import batch_sharding
from eurollm_jax.train import build_job, init_state, make_iterator, make_train_step
from eurollm_jax.train.step import BATCH_KEYS, StepOptions
from tests.train.helpers import override, small_config


def _setup(config, devices=None, keys=BATCH_KEYS):
    job = build_job(config, devices=devices)
    state = init_state(job.model_cfg, job.tx, job.mesh, job.spec, seed=0)
    return job, state, job.jitted_train_step(keys)


def _batches(config, n):
    it = make_iterator(config)
    return [next(it) for _ in range(n)]


def _run(job, state, fn, batches):
    sh = batch_sharding(job.mesh, 2)
    losses = []
    with jax.set_mesh(job.mesh):
        for b in batches:
            state, m = fn(state, {k: jax.device_put(v, sh) for k, v in b.items()})
            losses.append(float(m["loss"]))
    return state, losses


def _max_diff(a, b):
    a, b = jax.device_get((a, b))
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def test_micro_batches_equal_one_batch():
    # EuroLLM's peak LR: Adam's first update is ~lr * sign(g), so parameters whose gradient
    # is ~0 (summed in another order) may move by up to lr; 3e-4 keeps that under 1e-5.
    config = override(small_config(mesh=(1, 2, 4)), **{"optimizer.lr": 3e-4})
    batches = _batches(config, 1)
    job1, s1, f1 = _setup(config)
    s1, l1 = _run(job1, s1, f1, batches)
    config4 = override(small_config(mesh=(1, 2, 4), micro_batches=4), **{"optimizer.lr": 3e-4})
    job4, s4, f4 = _setup(config4)
    s4, l4 = _run(job4, s4, f4, batches)
    assert abs(l1[0] - l4[0]) < 1e-5
    assert _max_diff(s1["params"], s4["params"]) < 1e-5
    assert _max_diff(s1["opt_state"], s4["opt_state"]) < 1e-5


def test_sharded_equals_single_device():
    config = small_config(mesh=(2, 2, 2))
    batches = _batches(config, 3)
    job8, s8, f8 = _setup(config)
    s8, l8 = _run(job8, s8, f8, batches)
    job1, s1, f1 = _setup(small_config(mesh=(1, 1, 1)), devices=jax.devices()[:1])
    s1, l1 = _run(job1, s1, f1, batches)
    np.testing.assert_allclose(l8, l1, atol=1e-5)
    assert l8[-1] < l8[0]
    assert _max_diff(s8["params"], s1["params"]) < 1e-5


def test_sft_labels_of_prompt_tokens_change_nothing():
    config = small_config(mesh=(1, 1, 1))
    override(config, **{"data.source": "sft", "train.seq_len": 128})
    batch = _batches(config, 1)[0]
    assert 0 < batch["loss_mask"].sum() < (batch["segment_ids"] > 0).sum()  # prompts exist
    rng = np.random.default_rng(0)
    labels = batch["tokens"].copy()
    prompt = batch["loss_mask"] == 0
    changed_prompt = np.where(prompt, rng.integers(5, 384, labels.shape), labels).astype(np.int32)
    answer = (batch["loss_mask"] == 1) & (batch["segment_ids"] > 0)
    changed_answer = np.where(answer, rng.integers(5, 384, labels.shape), labels).astype(np.int32)
    keys = ("tokens", "segment_ids", "positions", "loss_mask", "labels")
    results = []
    job, state0, fn = _setup(config, devices=jax.devices()[:1], keys=keys)
    host_state = jax.device_get(state0)
    for lab in (labels, changed_prompt, changed_answer):
        state = jax.device_put(host_state, job.spec.shardings)
        with jax.set_mesh(job.mesh):
            state, m = fn(state, dict(batch, labels=lab))
        results.append((float(m["loss"]), jax.device_get(state["params"])))
    assert results[0][0] == results[1][0]
    assert _max_diff(results[0][1], results[1][1]) == 0.0
    assert abs(results[0][0] - results[2][0]) > 1e-3  # the assistant labels do count


def test_chunked_loss_equals_full_logits():
    config = override(small_config(mesh=(1, 2, 4)), **{"optimizer.lr": 3e-4})
    batches = _batches(config, 1)
    job, s, f = _setup(config)
    s, l_full = _run(job, s, f, batches)
    jobc, sc, fc = _setup(
        override(small_config(mesh=(1, 2, 4), loss_chunk=8), **{"optimizer.lr": 3e-4})
    )
    sc, l_chunk = _run(jobc, sc, fc, batches)
    assert abs(l_full[0] - l_chunk[0]) < 1e-5
    assert _max_diff(s["params"], sc["params"]) < 1e-5


def test_nonfinite_step_is_skipped_and_counted():
    config = small_config(mesh=(1, 1, 1))
    job, state, fn = _setup(config, devices=jax.devices()[:1])
    batch = _batches(config, 1)[0]
    good_scale = state["params"]["norm"]["scale"]
    state["params"]["norm"]["scale"] = good_scale.at[0].set(jnp.nan)
    before = jax.device_get(state)
    with jax.set_mesh(job.mesh):
        state, m = fn(state, batch)
        assert (
            int(m["skipped"]) == 1
            and int(m["nonfinite"]) == 1
            and not np.isfinite(float(m["loss"]))
        )
        after = jax.device_get(state)
        np.testing.assert_array_equal(
            np.isnan(after["params"]["norm"]["scale"]), np.isnan(before["params"]["norm"]["scale"])
        )
        assert _max_diff(before["opt_state"], after["opt_state"]) == 0.0
        assert int(after["step"]) == 1
        state, m = fn(state, batch)
        assert int(m["nonfinite"]) == 2
        state["params"]["norm"]["scale"] = good_scale
        state, m = fn(state, batch)
        assert int(m["skipped"]) == 0 and int(m["nonfinite"]) == 0


def test_z_loss_adds_to_the_objective_only():
    config = small_config(mesh=(1, 1, 1))
    batch = _batches(config, 1)[0]
    job = build_job(config, devices=jax.devices()[:1])
    host_state = jax.device_get(init_state(job.model_cfg, job.tx, job.mesh, job.spec, seed=0))
    out = []
    for z in (0.0, 1e-2):
        state = host_state
        step = make_train_step(
            job.spec.graphdef, job.model_cfg, job.tx, job.schedule, StepOptions(z_loss=z)
        )
        with jax.set_mesh(job.mesh):
            new, m = jax.jit(step)(state, batch)
        out.append((float(m["loss"]), float(m["z_loss"]), float(m["grad_norm"])))
    assert out[0][0] == pytest.approx(out[1][0], abs=1e-6)  # loss is the CE alone
    assert out[1][1] > 0 and out[0][2] != out[1][2]
