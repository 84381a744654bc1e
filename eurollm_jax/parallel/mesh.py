"""Building the device mesh from config, and multi-host start-up."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Sequence

import jax
import numpy as np

from eurollm_jax.schema import Section

MESH_AXES: tuple[str, ...] = ("data", "fsdp", "sequence", "tensor")


@dataclasses.dataclass(frozen=True)
class MeshConfig(Section):
    """Mesh shape by axis (the ``mesh`` section of job configs). One size may be -1: it
    takes the devices that are left.

    ``data`` replicates parameters and splits the batch; ``fsdp`` splits the batch
    and shards parameters (ZeRO-3 style); ``tensor`` shards heads, the MLP width and
    the vocabulary (Megatron style); ``sequence`` splits every row's tokens (context
    parallelism: ring or all-gather attention, ``ModelConfig.context_parallel``).
    """

    data: int = 1
    fsdp: int = -1
    tensor: int = 1
    sequence: int = 1

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Sizes in ``MESH_AXES`` order: (data, fsdp, sequence, tensor)."""
        return (self.data, self.fsdp, self.sequence, self.tensor)

    @classmethod
    def from_shape(cls, shape: Sequence[int]) -> "MeshConfig":
        """(data, fsdp, tensor) or, with context parallelism, (data, fsdp, sequence, tensor)."""
        shape = [int(s) for s in shape]
        if len(shape) == 3:
            return cls(data=shape[0], fsdp=shape[1], tensor=shape[2])
        if len(shape) == 4:
            return cls(data=shape[0], fsdp=shape[1], sequence=shape[2], tensor=shape[3])
        raise ValueError(
            f"mesh shape {tuple(shape)} must have 3 entries (data, fsdp, tensor) or 4 "
            f"{MESH_AXES}; e.g. (1, -1, 1) for pure FSDP, (1, -1, 4, 1) for FSDP with "
            "4-way context parallelism."
        )


def resolve_mesh_shape(shape: Sequence[int], num_devices: int) -> tuple[int, ...]:
    """Replace a single -1 by the remaining device count and check the product."""
    shape = [int(s) for s in shape]
    if any(s == 0 or s < -1 for s in shape):
        raise ValueError(f"mesh sizes must be positive or -1, got {tuple(shape)}")
    free = [i for i, s in enumerate(shape) if s == -1]
    if len(free) > 1:
        raise ValueError(f"at most one mesh axis may be -1, got {tuple(shape)}")
    fixed = math.prod(s for s in shape if s != -1)
    if free:
        if num_devices % fixed:
            raise ValueError(
                f"mesh {tuple(shape)}: the fixed axes multiply to {fixed}, which does not divide "
                f"the {num_devices} available devices"
            )
        shape[free[0]] = num_devices // fixed
    total = math.prod(shape)
    if total > num_devices:
        raise ValueError(
            f"mesh {tuple(shape)} needs {total} devices but only {num_devices} are available; "
            f"shrink an axis or set one to -1"
        )
    if total != num_devices:
        raise ValueError(
            f"mesh {tuple(shape)} uses {total} of the {num_devices} devices; the axes must "
            f"multiply to the device count (set one axis to -1 to take the rest)"
        )
    return tuple(shape)


def create_mesh(
    config: MeshConfig | Sequence[int] | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> jax.sharding.Mesh:
    """A mesh with axes ("data", "fsdp", "sequence", "tensor") over ``devices`` (default:
    all); a 3-entry shape is (data, fsdp, tensor) with no context parallelism.

    Axes are ``Auto`` so that sharding propagates from the logical-axis constraints.
    """
    if config is None:
        config = MeshConfig()
    if not isinstance(config, MeshConfig):
        config = MeshConfig.from_shape(config)
    devices = list(jax.devices() if devices is None else devices)
    shape = resolve_mesh_shape(config.shape, len(devices))
    try:
        from jax.experimental import mesh_utils

        device_array = mesh_utils.create_device_mesh(shape, devices=devices)
    except Exception:  # non-physical topologies (CPU emulation, partial slices)
        device_array = np.asarray(devices).reshape(shape)
    return jax.sharding.Mesh(
        device_array, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    )


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    cpu_collectives: bool | None = None,
) -> bool:
    """Start jax.distributed when this is one process of several; no-op otherwise.

    Arguments default to the environment variables ``EUROLLM_COORDINATOR``,
    ``EUROLLM_NUM_PROCESSES`` and ``EUROLLM_PROCESS_ID``. On TPU pods and SLURM/GKE
    clusters, with no arguments and no variables, jax discovers the cluster itself
    (``EUROLLM_AUTO_DISTRIBUTED=1`` or a TPU pod environment). Returns True when
    distributed mode is on. Must run before any other jax call touches devices.
    """
    coordinator_address = coordinator_address or os.environ.get("EUROLLM_COORDINATOR")
    if num_processes is None and "EUROLLM_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["EUROLLM_NUM_PROCESSES"])
    if process_id is None and "EUROLLM_PROCESS_ID" in os.environ:
        process_id = int(os.environ["EUROLLM_PROCESS_ID"])
    tpu_hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    auto = os.environ.get("EUROLLM_AUTO_DISTRIBUTED") == "1" or (
        "," in tpu_hosts and " " not in tpu_hosts  # a multi-host TPU slice names its workers
    )
    if coordinator_address is None and not auto:
        return False
    if cpu_collectives is None:
        cpu_collectives = coordinator_address is not None and coordinator_address.startswith(
            ("127.0.0.1", "localhost")
        )
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator_address is None:
        jax.distributed.initialize()
    else:
        if num_processes is None or process_id is None:
            raise ValueError(
                "multi-host start-up needs num_processes and process_id with a coordinator "
                "address (or EUROLLM_NUM_PROCESSES / EUROLLM_PROCESS_ID)"
            )
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
    logging.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
    return True
