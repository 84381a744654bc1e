"""Up-front checks of a training job: config, mesh, batch, workdir; clear errors, no files."""

from __future__ import annotations

import os

from eurollm_jax.data import BATCH_KEYS
from eurollm_jax.model import ModelConfig
from eurollm_jax.parallel import resolve_mesh_shape


class TrainConfigError(ValueError):
    """A training job that cannot run as configured; the message says how to fix it."""


def check_workdir(workdir: str) -> str:
    if not workdir:
        raise TrainConfigError("--workdir is required (the run's checkpoints and metrics go there)")
    workdir = os.path.abspath(os.path.expanduser(workdir))
    parent = os.path.dirname(workdir)
    if not os.path.isdir(parent):
        raise TrainConfigError(
            f"the parent directory of --workdir does not exist: {parent}; create it first "
            f"(the trainer creates only the workdir itself)"
        )
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise TrainConfigError(f"--workdir {workdir} exists and is not a directory")
    return workdir


def model_config(config) -> ModelConfig:
    try:
        return ModelConfig.from_dict(config.model.to_dict())
    except (TypeError, ValueError) as e:
        raise TrainConfigError(f"config.model: {e}") from e


def check_train_config(config, num_devices: int) -> tuple[int, int, int]:
    """Validate the train section against the mesh; returns the resolved mesh shape."""
    t = config.train
    try:
        shape = resolve_mesh_shape(
            (config.mesh.data, config.mesh.fsdp, config.mesh.tensor), num_devices
        )
    except ValueError as e:
        raise TrainConfigError(f"config.mesh: {e}") from e
    for name in ("steps", "batch_size", "seq_len", "micro_batches", "log_every"):
        if int(t[name]) <= 0:
            raise TrainConfigError(f"train.{name} must be a positive integer, got {t[name]}")
    data_par = shape[0] * shape[1]
    b, m = int(t.batch_size), int(t.micro_batches)
    if b % m:
        raise TrainConfigError(
            f"train.batch_size ({b}) must be divisible by train.micro_batches ({m})"
        )
    if (b // m) % data_par:
        raise TrainConfigError(
            f"each micro-batch ({b} / {m} = {b // m} sequences) must divide over the data axes "
            f"of the "
            f"mesh (data x fsdp = {shape[0]} x {shape[1]} = {data_par}); choose train.batch_size a "
            f"multiple of {m * data_par} or change the mesh"
        )
    mc = model_config(config)
    if int(t.seq_len) > mc.max_seq_len:
        raise TrainConfigError(
            f"train.seq_len ({t.seq_len}) exceeds model.max_seq_len ({mc.max_seq_len})"
        )
    chunk = int(t.get("loss_chunk", 0) or 0)
    if chunk and int(t.seq_len) % chunk:
        raise TrainConfigError(
            f"train.loss_chunk ({chunk}) must divide train.seq_len ({t.seq_len})"
        )
    if int(t.max_nonfinite) <= 0:
        raise TrainConfigError("train.max_nonfinite must be positive")
    if int(config.checkpoint.keep) <= 0:
        raise TrainConfigError("checkpoint.keep must be positive")
    return shape


def batch_problem(batch, batch_size: int, seq_len: int) -> str | None:
    """Why a (process-local) batch does not match the contract, or None."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        return f"the batch lacks {missing}; a batch is a dict with {list(BATCH_KEYS)}, all [B, T]"
    for k in BATCH_KEYS:
        shape = tuple(batch[k].shape)
        if shape != (batch_size, seq_len):
            return (
                f"batch[{k!r}] has shape {shape}, expected the process-local batch "
                f"({batch_size}, {seq_len}) = (train.batch_size / processes, train.seq_len)"
            )
    return None
