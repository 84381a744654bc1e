"""Ahead-of-time compilation of the real train step for a TPU topology, on any host.

``compile_for_topology(config, "v5p:4x4x4")`` builds the job (mesh, sharded abstract state,
optimizer) over the devices of a *described* TPU slice (``jax.experimental.topologies``,
needs libtpu: the ``tpu`` extra), lowers and compiles the same jitted train step the
trainer runs, and reports per-chip memory (arguments, outputs, temporaries, total) against
the chip's HBM plus the step's FLOPs. Nothing is allocated; no TPU is needed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import jax

from eurollm_jax.parallel.hardware import chip_info

# Slice names (accelerator types) -> topology names. v5p/v4 count TensorCores (2 per chip).
ACCELERATOR_TOPOLOGIES = {
    "v5e-1": "v5e:1x1",
    "v5e-4": "v5e:2x2",
    "v5e-8": "v5e:2x4",
    "v5e-16": "v5e:4x4",
    "v5e-32": "v5e:4x8",
    "v5e-64": "v5e:8x8",
    "v5e-128": "v5e:8x16",
    "v5e-256": "v5e:16x16",
    "v6e-1": "v6e:1x1",
    "v6e-4": "v6e:2x2",
    "v6e-8": "v6e:2x4",
    "v6e-16": "v6e:4x4",
    "v6e-64": "v6e:8x8",
    "v6e-256": "v6e:16x16",
    "v5p-8": "v5p:2x2x1",
    "v5p-16": "v5p:2x2x2",
    "v5p-32": "v5p:2x2x4",
    "v5p-64": "v5p:2x4x4",
    "v5p-128": "v5p:4x4x4",
    "v5p-256": "v5p:4x4x8",
    "v5p-512": "v5p:4x8x8",
    "v4-8": "v4:2x2x1",
    "v4-16": "v4:2x2x2",
    "v4-32": "v4:2x2x4",
    "v4-64": "v4:2x4x4",
    "v4-128": "v4:4x4x4",
}


class TopologyError(RuntimeError):
    """libtpu is missing or the topology name is unknown."""


@dataclasses.dataclass
class CompileReport:
    topology: str
    chip: str
    num_chips: int
    mesh: dict
    batch_size: int
    seq_len: int
    micro_batches: int
    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int
    total_bytes: int
    hbm_bytes: float
    flops_per_chip: float | None
    model_flops_per_step: float
    params: int
    compile_error: str | None = None  # XLA refused the program (out of HBM)

    @property
    def fits(self) -> bool:
        return self.compile_error is None and self.total_bytes <= self.hbm_bytes

    def table(self) -> str:
        gib = 2**30
        lines = [
            f"topology {self.topology}: {self.num_chips} x {self.chip} chips, mesh {self.mesh}",
            f"step: batch {self.batch_size} x {self.seq_len} tokens, "
            f"{self.micro_batches} micro-batch(es), "
            f"{self.params / 1e9:.3f}B params",
            "per-chip memory:",
            f"  arguments    {self.argument_bytes / gib:9.2f} GiB  (params, optimizer, batch)",
            f"  outputs      {(self.output_bytes - self.alias_bytes) / gib:9.2f} GiB  (fresh)",
            f"  temporaries  {self.temp_bytes / gib:9.2f} GiB  (activations, gradients, workspace)",
            f"  total        {self.total_bytes / gib:9.2f} GiB  of "
            f"{self.hbm_bytes / gib:.2f} GiB HBM "
            f"({100 * self.total_bytes / self.hbm_bytes:.0f}%)",
        ]
        if self.flops_per_chip:
            lines.append(
                f"compiled FLOPs per chip per step: {self.flops_per_chip:.4g} "
                f"(XLA's cost analysis: a scanned layer's body counted once)"
            )
        lines.append(f"model FLOPs per step (6N + attention): {self.model_flops_per_step:.4g}")
        if self.compile_error:
            lines.append(f"XLA: {self.compile_error}")
        lines.append("FITS" if self.fits else "DOES NOT FIT")
        return "\n".join(lines)


def quiet_libtpu_env() -> None:
    """Environment that lets libtpu describe topologies on a host without TPUs, quietly."""
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v5litepod-4")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("TPU_STDERR_LOG_LEVEL", "3")
    os.environ.setdefault("TPU_MIN_LOG_LEVEL", "3")


def libtpu_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("libtpu") is not None


def topology_devices(topology: str):
    name = ACCELERATOR_TOPOLOGIES.get(topology, topology)
    if not libtpu_available():
        raise TopologyError("AOT compilation for TPU needs libtpu: pip install 'eurollm_jax[tpu]'")
    from jax.experimental import topologies

    try:
        desc = topologies.get_topology_desc(platform="tpu", topology_name=name)
    except Exception as e:  # noqa: BLE001 - libtpu raises several types
        raise TopologyError(
            f"libtpu cannot describe topology {topology!r} ({name}): {e}. Use names like "
            f"'v5e:4x4', 'v5p:4x4x4' or slice names {sorted(ACCELERATOR_TOPOLOGIES)[:6]}..."
        ) from e
    return name, list(desc.devices)


def compile_for_topology(config, topology: str) -> CompileReport:
    from eurollm_jax.train.loop import build_job
    from eurollm_jax.train.step import abstract_batch

    name, devices = topology_devices(topology)
    if config.model.attention_impl == "auto":  # "auto" resolves on *this* host's platform
        config.model.attention_impl = "splash"
    job = build_job(config, devices=devices)
    spec = job.spec
    fn = job.jitted_train_step()
    t = config.train
    batch = abstract_batch(int(t.batch_size), int(t.seq_len), job.mesh)
    kind = devices[0].device_kind
    info = chip_info(kind) or (kind, 0.0, float("inf"))
    mcfg = job.model_cfg
    tokens = int(t.batch_size) * int(t.seq_len)
    common = dict(
        topology=name,
        chip=info[0],
        num_chips=len(devices),
        mesh={k: int(v) for k, v in job.mesh.shape.items()},
        batch_size=int(t.batch_size),
        seq_len=int(t.seq_len),
        micro_batches=int(t.micro_batches),
        hbm_bytes=info[2],
        model_flops_per_step=mcfg.train_flops_per_token(int(t.seq_len)) * tokens,
        params=mcfg.param_count(),
    )
    with jax.set_mesh(job.mesh):
        lowered = fn.lower(spec.abstract, batch)
        try:
            compiled = lowered.compile()
        except Exception as e:  # noqa: BLE001 - XLA:TPU refuses programs that exceed HBM
            oom = _parse_oom(str(e))
            if oom is None:
                raise
            required, available = oom
            # XLA stops at the temporaries; arguments are known from the abstract state.
            args = _bytes_per_device(spec.abstract) + _bytes_per_device(batch)
            return CompileReport(
                argument_bytes=args,
                output_bytes=0,
                alias_bytes=0,
                temp_bytes=int(required),
                total_bytes=args + int(required),
                flops_per_chip=None,
                compile_error=str(e).splitlines()[0][:300],
                **common,
            )
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    flops = float(cost.get("flops", 0.0)) if cost else None
    args, outs = int(mem.argument_size_in_bytes), int(mem.output_size_in_bytes)
    alias, temps = int(mem.alias_size_in_bytes), int(mem.temp_size_in_bytes)
    total = args + outs - alias + temps
    return CompileReport(
        argument_bytes=args,
        output_bytes=outs,
        alias_bytes=alias,
        temp_bytes=temps,
        total_bytes=total,
        flops_per_chip=flops,
        **common,
    )


def _parse_oom(message: str):
    """(required, available) bytes from XLA:TPU's RESOURCE_EXHAUSTED message, or None."""
    if "RESOURCE_EXHAUSTED" not in message and "Ran out of memory" not in message:
        return None
    m = re.search(
        r"temporaries \(([\d.]+)([KMGT])\) exceeds available HBM \(([\d.]+)([KMGT])\)", message
    )
    if not m:
        return float("nan"), float("nan")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    return float(m.group(1)) * scale[m.group(2)], float(m.group(3)) * scale[m.group(4)]


def _bytes_per_device(tree) -> int:
    total = 0
    for leaf in jax.tree.leaves(tree):
        sharding = getattr(leaf, "sharding", None)
        shape = sharding.shard_shape(leaf.shape) if sharding is not None else leaf.shape
        total += math.prod(shape) * jax.numpy.dtype(leaf.dtype).itemsize
    return total
