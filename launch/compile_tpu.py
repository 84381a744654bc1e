"""Fit check for TPU pods, e.g.
``python -m launch.compile_tpu --config=configs/eurollm_9b.py --topology=v5p:4x4x4 --mesh=1,-1,1``
(with context parallelism: ``--mesh=1,-1,8,1`` = data, fsdp, sequence, tensor)

Compiles the real train step ahead of time for a TPU topology on this (CPU) host and prints
per-chip memory against HBM and the step's FLOPs; exits 1 when it does not fit, 2 on errors.
Needs libtpu (``pip install 'eurollm_jax[tpu]'``). Config overrides work as for training,
e.g. ``--config.train.batch_size=256 --config.model.remat_policy=full``.
"""

import sys

from eurollm_jax.train.aot import quiet_libtpu_env

quiet_libtpu_env()

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "job config file (configs/*.py)")
_TOPOLOGY = flags.DEFINE_string("topology", None, "TPU topology, e.g. v5e:4x4, v5p:4x4x4, v5e-256")
_MESH = flags.DEFINE_string(
    "mesh", None, "data,fsdp,tensor or data,fsdp,sequence,tensor sizes (one may be -1); "
    "default: config.mesh"
)


def main(argv):
    del argv
    import jax

    jax.config.update("jax_platforms", "cpu")
    from eurollm_jax.train.aot import TopologyError, compile_for_topology
    from eurollm_jax.train.validate import TrainConfigError

    config = _CONFIG.value
    if config is None or not _TOPOLOGY.value:
        print("error: --config and --topology are required", file=sys.stderr)
        return 2
    if _MESH.value:
        try:
            sizes = [int(x) for x in _MESH.value.split(",")]
            if len(sizes) not in (3, 4):
                raise ValueError
        except ValueError:
            print(
                "error: --mesh must be three integers data,fsdp,tensor or four "
                f"data,fsdp,sequence,tensor, got {_MESH.value!r}",
                file=sys.stderr,
            )
            return 2
        if len(sizes) == 3:
            sizes = [sizes[0], sizes[1], 1, sizes[2]]
        (config.mesh.data, config.mesh.fsdp, config.mesh.sequence,
         config.mesh.tensor) = sizes
    try:
        report = compile_for_topology(config, _TOPOLOGY.value)
    except (TopologyError, TrainConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.table())
    return 0 if report.fits else 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
