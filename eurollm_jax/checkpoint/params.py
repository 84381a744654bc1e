"""Params-only checkpoints in Orbax format: the one format experiments and inference read.

Layout of a params directory::

    DIR/model_config.json   ModelConfig fields (the source of truth for the shapes)
    DIR/params/             Orbax (tensorstore) tree of parameter arrays

Restoring reshards onto any mesh: each array is read directly into its target sharding.
"""

from __future__ import annotations

import json
import os

import jax
import orbax.checkpoint as ocp
from flax import nnx

from eurollm_jax.fileio import write_json
from eurollm_jax.model.config import ModelConfig
from eurollm_jax.model.factory import abstract_model
from eurollm_jax.model.transformer import Transformer
from eurollm_jax.parallel.rules import Rules, state_shardings

CONFIG_FILE = "model_config.json"
PARAMS_DIR = "params"


def save_params(model: Transformer, directory: str, *, force: bool = False) -> str:
    """Write ``model``'s parameters and config to ``directory`` (synchronously)."""
    directory = os.path.abspath(directory)
    target = os.path.join(directory, PARAMS_DIR)
    if os.path.exists(target) and not force:
        raise FileExistsError(f"{target} exists; pass force=True to overwrite")
    os.makedirs(directory, exist_ok=True)
    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(target, pure, force=force)
        ckptr.wait_until_finished()
    if jax.process_index() == 0:
        write_json(os.path.join(directory, CONFIG_FILE), model.cfg.to_dict())
    return directory


def load_model_config(directory: str, **overrides) -> ModelConfig:
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{directory}: no {CONFIG_FILE}; expected a params directory written by save_params "
            f"or `python -m launch.convert`"
        )
    with open(path) as f:
        values = json.load(f)
    values.update(overrides)
    return ModelConfig.from_dict(values)


def load_params(directory: str, *, mesh=None, rules: Rules | None = None, **overrides) -> Transformer:
    """Restore a model saved by ``save_params`` onto ``mesh`` (default: one device).

    ``overrides`` change non-shape fields (compute_dtype, scan_layers, attention_impl...).
    """
    directory = os.path.abspath(directory)
    cfg = load_model_config(directory, **overrides)
    if mesh is None:
        from eurollm_jax.parallel.mesh import create_mesh

        mesh = create_mesh((1, 1, 1), devices=jax.devices()[:1])
    graphdef, abstract_state = nnx.split(abstract_model(cfg))
    shardings = state_shardings(abstract_state, mesh, rules)
    is_var = lambda x: isinstance(x, nnx.Variable)  # noqa: E731
    target = jax.tree.map(
        lambda v, s: v.replace(jax.ShapeDtypeStruct(v.get_value().shape, v.get_value().dtype,
                                                    sharding=s.get_value())),
        abstract_state, shardings, is_leaf=is_var,
    )
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(os.path.join(directory, PARAMS_DIR), nnx.to_pure_dict(target))
    nnx.replace_by_pure_dict(abstract_state, restored)
    return nnx.merge(graphdef, abstract_state)
