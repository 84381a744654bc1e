"""The optimizer: AdamW with global-norm clipping, decay masks and frozen parameter groups.

Parameters are addressed by their path in the pure parameter dict, joined with "/"
(``layers/self_attn/q_proj``, ``norm/scale``, ``lm_head``). Patterns are Python regular
expressions matched with ``re.search``:

- ``optimizer.no_decay`` (default ``("norm",)``): no weight decay (RMSNorm scales);
- ``train.freeze``: parameters that never change (no update, no optimizer state);
- ``train.trainable``: when non-empty, everything that matches none of these is frozen
  (e.g. ``("lm_head",)`` trains only the head).

The learning rate is read from the train state's ``step``, passed to every update as
``tx.update(grads, opt_state, params, step=state["step"])``, not from a counter inside the
optimizer state: a skipped (non-finite) step leaves the optimizer state untouched, and an
internal counter would then fall behind the step, shifting the applied learning rate, the
end of a WSD decay and every phase boundary. Adam's own bias-correction count still counts
applied updates only, as it should.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import optax


class OptimizerError(ValueError):
    """A bad optimizer configuration (unknown name, a freeze pattern that matches nothing)."""


def param_paths(params) -> Any:
    """A tree like ``params`` whose leaves are the "/"-joined paths."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: jax.tree_util.keystr(path, simple=True, separator="/"), params
    )


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, path) for p in patterns)


def trainable_labels(params, freeze: Sequence[str] = (), trainable: Sequence[str] = ()):
    """Tree of "train"/"freeze" labels; raises if a pattern matches no parameter."""
    paths = param_paths(params)
    all_paths = jax.tree.leaves(paths)
    for pattern in list(freeze) + list(trainable):
        if not any(re.search(pattern, p) for p in all_paths):
            raise OptimizerError(
                f"parameter pattern {pattern!r} matches no parameter; parameter paths are "
                f"{all_paths}"
            )

    def label(path):
        frozen = _matches(path, freeze) or (bool(trainable) and not _matches(path, trainable))
        return "freeze" if frozen else "train"

    labels = jax.tree.map(label, paths)
    if all(v == "freeze" for v in jax.tree.leaves(labels)):
        raise OptimizerError("every parameter is frozen; loosen train.freeze / train.trainable")
    return labels


def decay_mask(params, no_decay: Sequence[str] = ("norm",)):
    """True where weight decay applies."""
    return jax.tree.map(lambda p: not _matches(p, no_decay), param_paths(params))


class _StepScheduleState(NamedTuple):
    """No state: the step comes from the caller."""


def scale_by_step_schedule(schedule) -> optax.GradientTransformationExtraArgs:
    """Multiply updates by ``-schedule(step)``, ``step`` being an extra argument of update."""

    def init_fn(params):
        del params
        return _StepScheduleState()

    def update_fn(updates, state, params=None, *, step=None, **extra):
        del params, extra
        if step is None:
            raise TypeError(
                "this optimizer reads the learning rate at the train state's step: call "
                "tx.update(grads, opt_state, params, step=state['step'])"
            )
        lr = schedule(step)
        updates = jax.tree.map(lambda u: (-lr * u).astype(u.dtype), updates)
        return updates, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def make_optimizer(opt: Mapping[str, Any], schedule, params, *, freeze=(), trainable=()):
    """AdamW (or plain SGD, for debugging) for ``params`` driven by ``schedule``.

    ``opt`` is the ``optimizer`` config section (``train.config.OptimizerSection`` or a
    mapping of its fields). Returns an ``optax.GradientTransformation`` whose state mirrors
    ``params`` (frozen leaves hold no state).
    """
    from eurollm_jax.train.config import OptimizerSection

    if not isinstance(opt, OptimizerSection):
        try:
            opt = OptimizerSection.from_mapping(opt, "optimizer")
        except ValueError as e:
            raise OptimizerError(str(e)) from e
    clip, no_decay = opt.clip_norm, tuple(opt.no_decay)
    if opt.name == "adamw":  # optax.adamw, with the learning rate taken at the caller's step
        core = optax.chain(
            optax.scale_by_adam(b1=opt.b1, b2=opt.b2, eps=opt.eps),
            optax.add_decayed_weights(opt.weight_decay, mask=lambda p: decay_mask(p, no_decay)),
            scale_by_step_schedule(schedule),
        )
    else:  # sgd (the section allows no other name)
        core = optax.chain(
            optax.trace(decay=opt.momentum) if opt.momentum else optax.identity(),
            scale_by_step_schedule(schedule),
        )
    tx = optax.chain(optax.clip_by_global_norm(clip), core) if clip > 0 else core
    if freeze or trainable:
        labels = trainable_labels(params, tuple(freeze), tuple(trainable))
        tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels)
    return tx
