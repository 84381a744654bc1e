"""Pure train and eval steps, and their jitted, sharded forms.

``train_step(state, batch) -> (state, metrics)``: gradient accumulation over
``micro_batches`` inside the step (``lax.scan``), token cross-entropy normalised by the
*global* number of targets of the whole batch, optional z-loss, global-norm clipping and
AdamW (via the optax transformation), and a NaN/inf guard: a step whose loss or gradient
norm is not finite leaves parameters and optimizer state untouched and increments
``state["nonfinite"]`` (reset by the next finite step); the loop aborts after K in a row.

``jit_train_step`` compiles it with explicit in/out shardings and donates the state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from eurollm_jax.data import BATCH_KEYS
from eurollm_jax.model import ModelConfig, dense
from eurollm_jax.parallel import batch_sharding
from eurollm_jax.parallel.rules import constrain
from eurollm_jax.train.loss import (
    chunked_cross_entropy_sums,
    cross_entropy_sums,
    restrict_vocab,
    shifted_targets,
    target_weights,
    token_nll,
)
from eurollm_jax.train.state import StateSpec, params_to_model, replicated


@dataclasses.dataclass(frozen=True)
class StepOptions:
    micro_batches: int = 1
    z_loss: float = 0.0
    loss_chunk: int = 0  # 0: full logits; else LM head + loss this many positions at a time
    vocab_subset: tuple[int, ...] = ()  # (): softmax over the vocabulary; else over these ids
    # "token": every target token weighs the same; "sequence": every packed sequence (its
    # targets' mean), as long-context SFT recipes do
    loss_normalisation: str = "token"


def loss_sums(graphdef, cfg: ModelConfig, params, mb, loss_chunk: int = 0, vocab_subset=()):
    """(NLL sum, z sum) of one (micro-)batch: tokens, segment_ids, positions, targets, weights.
    ``vocab_subset``: the cross-entropy of a softmax over those token ids only
    (``loss.restrict_vocab``)."""
    model = params_to_model(graphdef, params)
    if loss_chunk or vocab_subset:
        out = model.forward(
            mb["tokens"], segment_ids=mb["segment_ids"], positions=mb["positions"], logits="none"
        )
        kernel, targets = model.lm_head_kernel(), mb["targets"]
        if vocab_subset:
            kernel, targets = restrict_vocab(kernel, targets, vocab_subset)
        if not loss_chunk:
            logits = dense(out.final_hidden, kernel, preferred_element_type=jnp.float32)
            return cross_entropy_sums(logits, targets, mb["weights"])
        return chunked_cross_entropy_sums(
            out.final_hidden, kernel, targets, mb["weights"], loss_chunk
        )
    logits = model.forward(
        mb["tokens"], segment_ids=mb["segment_ids"], positions=mb["positions"]
    ).logits
    return cross_entropy_sums(logits, mb["targets"], mb["weights"])


def row_loss_sums(graphdef, cfg: ModelConfig, params, batch):
    """Per row of ``batch`` (the train step's batch schema): ``(NLL sum [B], targets [B])``
    in fp32, with the train step's targets and weights (the LM loss, no z-loss). Pure: for
    hooks that score examples or take gradients on the current params (per-example
    rewards, per-source held-out losses); ``sum(nll) / sum(targets)`` is the step's loss."""
    inputs = _prepare(batch)
    model = params_to_model(graphdef, params)
    logits = model.forward(
        inputs["tokens"], segment_ids=inputs["segment_ids"], positions=inputs["positions"]
    ).logits
    nll, _ = token_nll(logits, inputs["targets"])
    weights = inputs["weights"]
    return jnp.sum(nll * weights, axis=1), jnp.sum(weights, axis=1)


def _prepare(batch, normalisation: str = "token"):
    weights = target_weights(batch)
    if normalisation == "sequence":
        weights = per_sequence_weights(weights, batch["segment_ids"])
    return {
        "tokens": batch["tokens"].astype(jnp.int32),
        "segment_ids": batch["segment_ids"].astype(jnp.int32),
        "positions": batch["positions"].astype(jnp.int32),
        "targets": shifted_targets(batch),
        "weights": weights,
    }


def per_sequence_weights(weights_BT, segment_ids_BT):
    """Token weights scaled by 1 / (targets of their sequence): each packed sequence then
    weighs 1 in total, so ``sum(w * nll) / sum(w)`` is the mean of the sequences' mean
    losses (a short answer counts as much as a long one)."""
    b, t = weights_BT.shape
    ids = (jnp.arange(b, dtype=jnp.int32)[:, None] * t + segment_ids_BT.astype(jnp.int32))
    counts = jax.ops.segment_sum(weights_BT.reshape(-1), ids.reshape(-1), num_segments=b * t)
    per_token = counts[ids]
    return jnp.where(weights_BT > 0, weights_BT / jnp.maximum(per_token, 1.0), 0.0)


def _split_micro(x, m: int):
    """[B, ...] -> [M, B/M, ...] taking rows b = i*M + m, so each micro-batch is spread
    evenly over the batch-sharded devices (no resharding)."""
    b = x.shape[0]
    x = x.reshape(b // m, m, *x.shape[1:])
    x = jnp.swapaxes(x, 0, 1)
    return constrain(x, (None, "act_batch") + (None,) * (x.ndim - 2))


def make_train_step(graphdef, cfg: ModelConfig, tx, schedule, opts: StepOptions) -> Callable:
    m = int(opts.micro_batches)

    def train_step(state, batch):
        inputs = _prepare(batch, opts.loss_normalisation)
        total = jnp.maximum(jnp.sum(inputs["weights"]), 1.0)
        params = state["params"]

        def objective(p, mb):
            nll, z = loss_sums(graphdef, cfg, p, mb, opts.loss_chunk, opts.vocab_subset)
            return (nll + opts.z_loss * z) / total, (nll, z)

        grad_fn = jax.value_and_grad(objective, has_aux=True)
        if m == 1:
            (_, (nll, z)), grads = grad_fn(params, inputs)
        else:
            micro = jax.tree.map(lambda x: _split_micro(x, m), inputs)

            def body(carry, mb):
                g_acc, nll_acc, z_acc = carry
                (_, (nll, z)), g = grad_fn(params, mb)
                g_acc = jax.tree.map(lambda a, b: a + b.astype(a.dtype), g_acc, g)
                return (g_acc, nll_acc + nll, z_acc + z), None

            zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
            zero = jnp.zeros((), jnp.float32)
            (grads, nll, z), _ = jax.lax.scan(body, (zeros, zero, zero), micro)
            grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)

        loss = nll / total
        z_mean = z / total
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(z_mean)
        updates, new_opt = tx.update(grads, state["opt_state"], params, step=state["step"])
        new_params = optax.apply_updates(params, updates)
        keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        new_state = {
            "step": state["step"] + 1,
            "params": jax.tree.map(keep, new_params, params),
            "opt_state": jax.tree.map(keep, new_opt, state["opt_state"]),
            "rng": state["rng"],
            "nonfinite": jnp.where(finite, 0, state["nonfinite"] + 1).astype(jnp.int32),
        }
        metrics = {
            "loss": loss,
            "z_loss": z_mean,
            "grad_norm": grad_norm,
            "lr": jnp.asarray(schedule(state["step"]), jnp.float32),
            "targets": total,
            "skipped": jnp.logical_not(finite).astype(jnp.int32),
            "nonfinite": new_state["nonfinite"],
        }
        return new_state, metrics

    return train_step


def make_eval_step(graphdef, cfg: ModelConfig, opts: StepOptions) -> Callable:
    def eval_step(params, batch):
        inputs = _prepare(batch, opts.loss_normalisation)
        nll, _ = loss_sums(graphdef, cfg, params, inputs, opts.loss_chunk, opts.vocab_subset)
        return {"nll": nll, "targets": jnp.sum(inputs["weights"])}

    return eval_step


def batch_shardings(mesh, keys=BATCH_KEYS) -> dict:
    sh = batch_sharding(mesh, 2)
    return {k: sh for k in keys}


def jit_train_step(train_step, spec: StateSpec, mesh, keys=BATCH_KEYS, compiler_options=None):
    """``train_step`` jitted with explicit shardings, the state donated.
    ``compiler_options``: XLA options for this computation (``train.compiler_options``)."""
    rep = replicated(mesh)
    return jax.jit(
        train_step,
        in_shardings=(spec.shardings, batch_shardings(mesh, keys)),
        out_shardings=(spec.shardings, rep),
        donate_argnums=(0,),
        compiler_options=dict(compiler_options) if compiler_options else None,
    )


def jit_eval_step(eval_step, spec: StateSpec, mesh, keys=BATCH_KEYS, compiler_options=None):
    return jax.jit(
        eval_step,
        in_shardings=(spec.shardings["params"], batch_shardings(mesh, keys)),
        out_shardings=replicated(mesh),
        compiler_options=dict(compiler_options) if compiler_options else None,
    )


def abstract_batch(batch_size: int, seq_len: int, mesh, keys=BATCH_KEYS) -> dict[str, Any]:
    sh = batch_sharding(mesh, 2)
    return {k: jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32, sharding=sh) for k in keys}
