"""Pre-training and SFT: sharded train state, pure jitted steps, Orbax checkpoints, the loop.

Public surface:
- ``train(config, workdir)`` / ``Trainer(config, workdir).add_hook(...).run()``: run or resume
  a job (``python -m launch.train``); ``Hook`` / ``StepInfo``: the loop's extension point;
- ``TrainJobConfig``: the typed, validated job config (every trainer setting and default);
- ``build_job(config)``: validated mesh, schedule, optimizer and abstract state;
- ``make_train_step`` / ``make_eval_step`` and ``jit_train_step``: the pure steps;
  ``row_loss_sums``: the step's LM loss per row (for hooks that score or differentiate);
- ``init_state`` / ``state_spec``: the sharded train state;
- ``make_schedule`` / ``parse_phases``: LR schedules and phases; ``make_optimizer``;
- ``Checkpointer``: Orbax checkpoints; ``export_from_workdir``: params-only export;
- ``make_iterator``: batch iterators of the ``eurollm_jax.data`` pipeline for every source
  (token shards, or in-memory synthetic, real multilingual text and SFT conversations);
- ``compile_for_topology``: AOT compilation of the train step for a TPU slice (fit check).
"""

from eurollm_jax.train.aot import CompileReport, TopologyError, compile_for_topology
from eurollm_jax.train.checkpointing import Checkpointer, CheckpointMismatchError
from eurollm_jax.train.config import TrainJobConfig
from eurollm_jax.train.data import DataConfigError, make_iterator
from eurollm_jax.train.hooks import Hook, StepInfo
from eurollm_jax.train.loop import (
    Job,
    Trainer,
    TrainingAborted,
    TrainResult,
    build_job,
    export_from_workdir,
    export_params,
    train,
)
from eurollm_jax.train.optimizer import OptimizerError, make_optimizer
from eurollm_jax.train.schedules import Phase, ScheduleError, make_schedule, parse_phases
from eurollm_jax.train.state import StateSpec, init_state, state_spec
from eurollm_jax.train.step import (
    StepOptions,
    jit_eval_step,
    jit_train_step,
    make_eval_step,
    make_train_step,
    row_loss_sums,
)
from eurollm_jax.train.validate import TrainConfigError

__all__ = [
    "CompileReport",
    "TopologyError",
    "compile_for_topology",
    "Checkpointer",
    "CheckpointMismatchError",
    "DataConfigError",
    "make_iterator",
    "TrainJobConfig",
    "Hook",
    "StepInfo",
    "Trainer",
    "Job",
    "TrainingAborted",
    "TrainResult",
    "build_job",
    "export_from_workdir",
    "export_params",
    "train",
    "OptimizerError",
    "make_optimizer",
    "Phase",
    "ScheduleError",
    "make_schedule",
    "parse_phases",
    "StateSpec",
    "init_state",
    "state_spec",
    "StepOptions",
    "jit_eval_step",
    "jit_train_step",
    "make_eval_step",
    "make_train_step",
    "row_loss_sums",
    "TrainConfigError",
]
