"""Creating models: abstractly (no allocation), or directly sharded on a mesh."""

from __future__ import annotations

import functools

import jax
from flax import nnx

from eurollm_jax.model.config import ModelConfig
from eurollm_jax.model.transformer import Transformer
from eurollm_jax.parallel.rules import Rules, state_shardings


def abstract_model(cfg: ModelConfig) -> Transformer:
    """The model with ShapeDtypeStruct leaves: shapes and metadata, no memory."""
    return nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))


def count_params(cfg: ModelConfig) -> int:
    """Parameter count from the abstract model (independent of the analytic formula)."""
    state = nnx.state(abstract_model(cfg), nnx.Param)
    return sum(int(x.size) for x in jax.tree.leaves(state))


def model_shardings(cfg: ModelConfig, mesh, rules: Rules | None = None):
    """(graphdef, state shardings) of the model on ``mesh``; raises ShardingError early."""
    graphdef, state = nnx.split(abstract_model(cfg))
    return graphdef, state_shardings(state, mesh, rules)


@functools.lru_cache(maxsize=16)
def _constructor(cfg: ModelConfig, mesh, rules_key):
    """(graphdef, jitted key -> state), compiled once per config, mesh and rule table."""
    rules = dict(rules_key) if rules_key is not None else None
    if mesh is None:
        graphdef, _ = nnx.split(abstract_model(cfg))
        shardings = None
    else:
        graphdef, shardings = model_shardings(cfg, mesh, rules)
    init = jax.jit(lambda key: nnx.state(Transformer(cfg, rngs=nnx.Rngs(key))), out_shardings=shardings)
    return graphdef, init


def create_model(cfg: ModelConfig, *, mesh=None, seed: int = 0, rules: Rules | None = None) -> Transformer:
    """A randomly initialised model. With a mesh, every parameter is created directly in
    its sharding (a jitted constructor with out_shardings), never whole on one device.
    The constructor is jitted with or without a mesh, so a seed gives the same bits."""
    rules_key = None if rules is None else tuple(sorted((k, tuple(v)) for k, v in rules.items()))
    graphdef, init = _constructor(cfg, mesh, rules_key)
    key = jax.random.key(seed)
    if mesh is None:
        return nnx.merge(graphdef, init(key))
    with jax.set_mesh(mesh):
        state = init(key)
    return nnx.merge(graphdef, state)

