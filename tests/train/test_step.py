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


def _relative_diff(a, b):
    """||a - b|| / ||b|| over every leaf of two trees (the norm-wise relative error)."""
    a, b = jax.device_get((a, b))
    num = sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))
              for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    den = sum(float(np.sum(np.asarray(y, np.float64) ** 2)) for y in jax.tree.leaves(b))
    return (num / den) ** 0.5


# The properties below compare one step's loss and gradient, with norm-wise relative bounds:
# the two computations sum the same fp32 terms in another order (another device split,
# micro-batch or chunk), which moves each sum by a few ulps (~1e-7 relative), far below 1e-5.
# The gradient is read as the update of one plain SGD step with lr = 1 and no clipping
# (params - new params == grad, up to one rounding of params of about 1e-7 relative). Params
# after several AdamW steps are NOT a fair quantity: Adam normalises each coordinate's update
# (~lr * sign(g) at first), so a gradient of ~1e-9 whose sign flips between two summation
# orders moves a parameter by ~2 lr.
SGD_LR1 = {"optimizer.name": "sgd", "optimizer.lr": 1.0, "optimizer.clip_norm": 0.0,
           "optimizer.warmup_steps": 0, "optimizer.schedule": "constant"}


def _sgd_step(config, batches, devices=None):
    """(loss, gradient) of the first step of ``config`` on ``batches[0]``."""
    job, state, fn = _setup(override(config, **SGD_LR1), devices=devices)
    before = jax.device_get(state["params"])
    state, losses = _run(job, state, fn, batches[:1])
    after = jax.device_get(state["params"])
    return losses[0], jax.tree.map(lambda b, a: np.asarray(b) - np.asarray(a), before, after)


def test_micro_batches_equal_one_batch():
    batches = _batches(small_config(mesh=(1, 2, 4)), 1)
    loss1, grad1 = _sgd_step(small_config(mesh=(1, 2, 4)), batches)
    loss4, grad4 = _sgd_step(small_config(mesh=(1, 2, 4), micro_batches=4), batches)
    assert loss4 == pytest.approx(loss1, rel=1e-5)
    assert _relative_diff(grad4, grad1) < 1e-5


def test_sharded_equals_single_device():
    config = small_config(mesh=(2, 2, 2))
    batches = _batches(config, 3)
    one = dict(devices=jax.devices()[:1])
    loss8, grad8 = _sgd_step(small_config(mesh=(2, 2, 2)), batches)
    loss1, grad1 = _sgd_step(small_config(mesh=(1, 1, 1)), batches, **one)
    assert loss8 == pytest.approx(loss1, rel=1e-5)
    assert _relative_diff(grad8, grad1) < 1e-5
    # and AdamW training on 8 devices learns: the loss goes down over three steps
    job8, s8, f8 = _setup(config)
    _, l8 = _run(job8, s8, f8, batches)
    assert l8[-1] < l8[0]


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
    batches = _batches(small_config(mesh=(1, 2, 4)), 1)
    loss_full, grad_full = _sgd_step(small_config(mesh=(1, 2, 4)), batches)
    loss_chunk, grad_chunk = _sgd_step(small_config(mesh=(1, 2, 4), loss_chunk=8), batches)
    assert loss_chunk == pytest.approx(loss_full, rel=1e-5)
    assert _relative_diff(grad_chunk, grad_full) < 1e-5


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


def test_skipped_step_keeps_the_schedule_on_the_state_step():
    """After a skipped (non-finite) step the applied learning rate is the schedule at the
    state's step, not at a count of applied updates (which would lag one step behind)."""
    config = override(
        small_config(mesh=(1, 1, 1)),
        **{"optimizer.name": "sgd", "optimizer.clip_norm": 0.0, "optimizer.warmup_steps": 4},
    )
    job, state, fn = _setup(config, devices=jax.devices()[:1])
    batch = _batches(config, 1)[0]
    good = state["params"]["norm"]["scale"]
    with jax.set_mesh(job.mesh):
        state["params"]["norm"]["scale"] = good.at[0].set(jnp.nan)
        state, m = fn(state, batch)  # step 0: skipped
        assert int(m["skipped"]) == 1 and int(state["step"]) == 1
        state["params"]["norm"]["scale"] = good
        before = jax.device_get(state["params"])
        state, m = fn(state, batch)  # step 1: applied with lr(1), logged as lr(1)
        after = jax.device_get(state["params"])
    lr1, lr0 = float(job.schedule(1)), float(job.schedule(0))
    assert lr1 == pytest.approx(2 * lr0) and float(m["lr"]) == pytest.approx(lr1)
    # plain SGD without clipping: the update is exactly -lr * grad
    grads = jax.grad(
        lambda p: _loss_of(job, p, batch)
    )(jax.device_put(before, job.spec.shardings["params"]))
    g = np.asarray(jax.device_get(grads)["lm_head"])
    moved = np.asarray(before["lm_head"]) - np.asarray(after["lm_head"])
    scale = float(np.sum(moved * g) / np.sum(g * g))
    assert scale == pytest.approx(lr1, rel=1e-3)


def _loss_of(job, params, batch):
    from eurollm_jax.train.step import _prepare, loss_sums

    inputs = _prepare({k: jnp.asarray(v) for k, v in batch.items()})
    nll, _ = loss_sums(job.spec.graphdef, job.model_cfg, params, inputs)
    return nll / jnp.maximum(jnp.sum(inputs["weights"]), 1.0)
