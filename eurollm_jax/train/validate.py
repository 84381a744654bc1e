"""Up-front checks of a training job (the typed schema of ``train.config``, the workdir, the
batch contract): clear errors, no files."""

from __future__ import annotations

import os

from eurollm_jax.data import BATCH_KEYS
from eurollm_jax.model import ModelConfig
from eurollm_jax.schema import ConfigError
from eurollm_jax.train.config import TrainJobConfig


class TrainConfigError(ConfigError):
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


def job_settings(config) -> TrainJobConfig:
    """The typed, validated settings of a job config (``train.config``)."""
    try:
        return TrainJobConfig.from_config(config)
    except ConfigError as e:
        raise TrainConfigError(str(e)) from e


def model_config(config) -> ModelConfig:
    return job_settings(config).model


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
