"""The logical-axis rule table and the helpers that apply it.

A rule maps one logical axis name to a tuple of mesh axes (or to nothing: replicated).
``logical_to_spec`` resolves a tuple of logical names, checking divisibility against
the mesh, into a ``PartitionSpec``. Axes listed in ``REPLICATE_IF_INDIVISIBLE`` fall
back to replication when their size does not divide (KV heads under wide tensor
parallelism, an odd vocabulary); any other indivisible axis is a ``ShardingError``
that names the axis, its size and the mesh axes.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Mapping, Sequence

import jax
from jax.sharding import NamedSharding, PartitionSpec

Rules = Mapping[str, tuple[str, ...]]

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    # parameters
    "vocab": ("tensor",),
    "embed": ("fsdp", "sequence"),  # ZeRO-3 over the sequence axis too (context parallelism)
    "mlp": ("tensor",),
    "q_heads": ("tensor",),
    "kv_heads": ("tensor",),
    "head_dim": (),
    "layers": (),
    "norm": (),
    # activations
    "act_batch": ("data", "fsdp"),
    "act_seq": ("sequence",),  # context parallelism; size 1 (no split) unless the mesh says
    "act_embed": (),
    "act_heads": ("tensor",),
    "act_kv_heads": ("tensor",),
    "act_head_dim": (),
    "act_mlp": ("tensor",),
    "act_vocab": ("tensor",),
    "cache_seq": (),
}

REPLICATE_IF_INDIVISIBLE = frozenset({"kv_heads", "act_kv_heads", "vocab", "act_vocab"})


class ShardingError(ValueError):
    """A config cannot be sharded on the requested mesh."""


def _mesh_axis_sizes(mesh) -> dict[str, int]:
    return dict(mesh.shape)


def logical_to_spec(
    logical_axes: Sequence[str | None],
    shape: Sequence[int] | None = None,
    mesh=None,
    rules: Rules | None = None,
    *,
    what: str = "array",
    strict: bool = True,
) -> PartitionSpec:
    """Resolve logical axis names into a PartitionSpec for ``mesh``.

    With ``shape`` and ``mesh`` given, each dimension is checked for divisibility by the
    product of the mesh axes it maps to (``strict=False``: an indivisible dimension is
    replicated instead of raising, used for activation hints). Mesh axes missing from ``mesh`` or already used
    by an earlier dimension are skipped.
    """
    rules = DEFAULT_RULES if rules is None else rules
    sizes = _mesh_axis_sizes(mesh) if mesh is not None else None
    used: set[str] = set()
    spec: list[Any] = []
    for dim, name in enumerate(logical_axes):
        if name is None:
            spec.append(None)
            continue
        if name not in rules:
            raise ShardingError(f"{what}: logical axis {name!r} has no rule; known: {sorted(rules)}")
        axes = [a for a in rules[name] if a not in used and (sizes is None or a in sizes)]
        if sizes is not None:
            axes = [a for a in axes if sizes[a] > 1]
        if shape is not None and sizes is not None and axes:
            n = math.prod(sizes[a] for a in axes)
            if shape[dim] % n:
                if name in REPLICATE_IF_INDIVISIBLE or not strict:
                    logging.debug(
                        "%s: %s=%d not divisible by mesh axes %s (%d); replicating that dim",
                        what, name, shape[dim], axes, n,
                    )
                    axes = []
                else:
                    raise ShardingError(
                        f"{what}: dimension {dim} ({name!r}, size {shape[dim]}) cannot be split "
                        f"over mesh axes {tuple(axes)} of total size {n}; choose a mesh whose "
                        f"{'/'.join(axes)} size divides {shape[dim]}"
                    )
        used.update(axes)
        spec.append(None if not axes else axes[0] if len(axes) == 1 else tuple(axes))
    return PartitionSpec(*spec)


def named_sharding(mesh, logical_axes, shape=None, rules: Rules | None = None, *, what="array"):
    return NamedSharding(mesh, logical_to_spec(logical_axes, shape, mesh, rules, what=what))


def _is_variable(x) -> bool:
    from flax import nnx

    return isinstance(x, nnx.Variable)


def path_str(path) -> str:
    """A pytree key path as dotted text ("layers.mlp.gate_proj")."""
    parts = []
    for p in path:
        key = getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))
        parts.append(str(key))
    return ".".join(parts)


def state_shardings(state, mesh, rules: Rules | None = None):
    """NamedShardings for an (abstract) NNX state, read from each Variable's ``logical_axes``.

    Returns a tree of the same structure (Variables holding shardings), usable as
    ``out_shardings`` of a jitted constructor or as ``jax.device_put`` target.
    Variables without ``logical_axes`` are replicated.
    """

    def one(path, v):
        axes = getattr(v, "logical_axes", None) if _is_variable(v) else None
        value = v.get_value() if _is_variable(v) else v
        if axes is None:
            sharding = NamedSharding(mesh, PartitionSpec())
        else:
            if len(axes) != len(value.shape):
                raise ShardingError(
                    f"{path_str(path)}: logical axes {axes} do not match shape {value.shape}"
                )
            sharding = named_sharding(mesh, axes, value.shape, rules, what=path_str(path))
        return v.replace(sharding) if _is_variable(v) else sharding

    return jax.tree_util.tree_map_with_path(one, state, is_leaf=_is_variable)


def current_mesh():
    """The mesh set by ``jax.set_mesh`` (abstract inside jit), or None."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty:
        return None
    return mesh


def constrain(x: jax.Array, logical_axes: Sequence[str | None], rules: Rules | None = None):
    """``with_sharding_constraint`` by logical names; a no-op when no mesh is set."""
    mesh = current_mesh()
    if mesh is None:
        return x
    spec = logical_to_spec(logical_axes, x.shape, mesh, rules, what="activation", strict=False)
    return jax.lax.with_sharding_constraint(x, spec)


def batch_sharding(mesh, ndim: int = 2, rules: Rules | None = None) -> NamedSharding:
    """Sharding of a [batch, ...] input: batch over the data axes, the rest replicated."""
    return NamedSharding(mesh, logical_to_spec(("act_batch",) + (None,) * (ndim - 1), None, mesh, rules))
