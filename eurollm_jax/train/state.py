"""The train state: step, parameters, optimizer state, RNG and the NaN-guard counter.

The state is a plain dict (a pytree Orbax saves as is)::

    {"step": int32[], "params": {...pure param dict...}, "opt_state": optax state,
     "rng": uint32[2] (raw key data), "nonfinite": int32[] (non-finite steps in a row)}

``params`` is the pure dict of the model's ``nnx.Param`` values (``nnx.split`` then
``to_pure_dict``); the step rebuilds the module with ``nnx.merge(graphdef, nnx.State(p))``.
Everything is created directly in its sharding: parameters from the rule table, the
optimizer state mirroring its parameters, scalars replicated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from eurollm_jax.model import ModelConfig, abstract_model, create_model, model_shardings


@dataclasses.dataclass
class StateSpec:
    """What is needed to build, jit and restore a train state on one mesh."""

    graphdef: Any
    shardings: dict  # same tree as the state, NamedSharding leaves
    abstract: dict  # same tree, ShapeDtypeStruct leaves carrying the shardings


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def opt_state_shardings(tx, abstract_params, p_shardings, mesh):
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    masked = lambda x: isinstance(x, optax.MaskedNode)  # noqa: E731  (frozen leaves: no state)
    return (
        optax.tree_map_params(
            tx,
            lambda leaf, s: leaf if masked(leaf) else s,
            abstract_opt,
            p_shardings,
            transform_non_params=lambda _: replicated(mesh),
            is_leaf=masked,
        ),
        abstract_opt,
    )


def state_spec(cfg: ModelConfig, tx, mesh) -> StateSpec:
    """Graphdef, shardings and the abstract (shape + sharding) train state on ``mesh``."""
    graphdef, model_sh = model_shardings(cfg, mesh)
    p_sh = nnx.to_pure_dict(model_sh)
    abstract_params = nnx.to_pure_dict(nnx.state(abstract_model(cfg)))
    o_sh, abstract_opt = opt_state_shardings(tx, abstract_params, p_sh, mesh)
    rep = replicated(mesh)
    shardings = {"step": rep, "params": p_sh, "opt_state": o_sh, "rng": rep, "nonfinite": rep}
    shapes = {
        "step": jax.ShapeDtypeStruct((), jnp.int32),
        "params": abstract_params,
        "opt_state": abstract_opt,
        "rng": jax.ShapeDtypeStruct((2,), jnp.uint32),
        "nonfinite": jax.ShapeDtypeStruct((), jnp.int32),
    }
    abstract = jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings
    )
    return StateSpec(graphdef=graphdef, shardings=shardings, abstract=abstract)


def init_params(cfg: ModelConfig, mesh, *, seed: int) -> dict:
    """Random parameters created directly in their shardings: ``create_model``'s values,
    as the pure dict the train state holds."""
    return nnx.to_pure_dict(nnx.state(create_model(cfg, mesh=mesh, seed=seed), nnx.Param))


def init_state(cfg: ModelConfig, tx, mesh, spec: StateSpec, *, seed: int, params=None) -> dict:
    """A fresh sharded state: random parameters (or ``params``), a zero optimizer state."""
    if params is None:
        params = init_params(cfg, mesh, seed=seed)
    else:
        params = jax.device_put(params, spec.shardings["params"])
    with jax.set_mesh(mesh):
        opt_state = jax.jit(tx.init, out_shardings=spec.shardings["opt_state"])(params)
    rep = replicated(mesh)
    rng = jax.random.key_data(jax.random.key(seed)).astype(jnp.uint32)
    return {
        "step": jax.device_put(jnp.zeros((), jnp.int32), rep),
        "params": params,
        "opt_state": opt_state,
        "rng": jax.device_put(rng, rep),
        "nonfinite": jax.device_put(jnp.zeros((), jnp.int32), rep),
    }


def params_to_model(graphdef, params):
    """The NNX module for a pure parameter dict (no copy)."""
    return nnx.merge(graphdef, nnx.State(params))
