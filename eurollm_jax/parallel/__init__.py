"""Device meshes, logical-axis sharding rules and multi-host initialisation.

Model code annotates parameters and key activations with *logical* axis names
(``"embed"``, ``"mlp"``, ``"act_batch"``, ...). This package owns the one rule table
that maps those names to the physical mesh axes ``data``, ``fsdp``, ``tensor``
(and, later, ``sequence``), and the helpers that turn annotations into
``NamedSharding``s and sharding constraints. Nothing outside this package names a
mesh axis.
"""

from eurollm_jax.parallel.batch import HostBatchLayout, host_batch_layout, make_global_batch
from eurollm_jax.parallel.mesh import (
    MESH_AXES,
    MeshConfig,
    create_mesh,
    initialize_distributed,
    resolve_mesh_shape,
)
from eurollm_jax.parallel.rules import (
    DEFAULT_RULES,
    ShardingError,
    batch_sharding,
    constrain,
    logical_to_spec,
    named_sharding,
    state_shardings,
    path_str,
)

__all__ = [
    "HostBatchLayout",
    "host_batch_layout",
    "make_global_batch",
    "MESH_AXES",
    "MeshConfig",
    "create_mesh",
    "initialize_distributed",
    "resolve_mesh_shape",
    "DEFAULT_RULES",
    "ShardingError",
    "batch_sharding",
    "constrain",
    "logical_to_spec",
    "named_sharding",
    "state_shardings",
    "path_str",
]
