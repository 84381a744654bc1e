"""The training loop: ``train(config, workdir)`` pre-trains or fine-tunes and resumes.

Workdir layout::

    WORKDIR/config.json          the job config of the latest start
    WORKDIR/metrics.jsonl        one JSON object per logged step (step, loss, grad_norm, lr,
                                 tokens_per_s, step_time_s, mfu, phase, [eval_loss, eval_ppl])
    WORKDIR/tensorboard/         the same scalars as TensorBoard events
    WORKDIR/checkpoints/<step>/  Orbax checkpoints (state, data iterator state, config)
    WORKDIR/params/              params-only export at the end (``checkpoint.load_params``)

Running again with the same workdir resumes from the latest checkpoint: same parameters,
optimizer state and data position, so the losses continue exactly as if never stopped
(records of steps after that checkpoint are dropped from metrics.jsonl and redone).
SIGTERM (preemption) saves a checkpoint at the next step boundary and returns cleanly;
``train.stop_after`` does the same after that many steps of this run. Every problem that
can be found before training (config, mesh, batch sizes, checkpoint shapes, missing
workdir parent) raises before anything is written.

The loop itself only steps: evaluation, logging, checkpointing and profiling are hooks
(``eurollm_jax.train.hooks``), and ``Trainer.add_hook(fn, every=n)`` adds more (a hook
sees the state and the step's metrics, may change the data mixture, and may keep state
that is saved in every checkpoint). Multi-host: each process loads the rows its devices
hold (``parallel.host_batch_layout``), the stop decision and the number of evaluation
batches are agreed by all processes, and resume needs the same process count.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import signal
import threading
from typing import Any, Callable

import jax
import numpy as np
from flax import nnx

from eurollm_jax.checkpoint import load_params, save_params
from eurollm_jax.checkpoint.params import load_model_config
from eurollm_jax.data import BATCH_KEYS
from eurollm_jax.fileio import write_json
from eurollm_jax.model import abstract_model
from eurollm_jax.parallel import (
    HostBatchLayout,
    ShardingError,
    create_mesh,
    host_batch_layout,
    make_global_batch,
)
from eurollm_jax.train import data as data_lib
from eurollm_jax.train.host_data import DataShardError, HostBatches
from eurollm_jax.train.hooks import (
    CheckpointHook,
    EvalHook,
    FunctionHook,
    Hook,
    LoggingHook,
    ProfileHook,
    StepInfo,
    StepTiming,
)
from eurollm_jax.train.checkpointing import (
    Checkpointer,
    CheckpointMismatchError,
    gather_json,
    shape_problems,
    shapes,
)
from eurollm_jax.train.optimizer import make_optimizer
from eurollm_jax.train.schedules import make_schedule, parse_phases, phase_index, phase_schedule
from eurollm_jax.train.state import init_state, params_to_model, state_spec
from eurollm_jax.train.step import (
    StepOptions,
    jit_eval_step,
    jit_train_step,
    make_eval_step,
    make_train_step,
)
from eurollm_jax.train.validate import (
    TrainConfigError,
    batch_problem,
    check_workdir,
    job_settings,
)
from eurollm_jax.schema import ConfigError, plain
from eurollm_jax.train.config import TrainJobConfig

log = logging.getLogger(__name__)


class TrainingAborted(RuntimeError):
    """Training stopped because of repeated non-finite losses or gradients."""


@dataclasses.dataclass
class TrainResult:
    step: int  # steps completed (the state's step)
    stopped_early: bool  # SIGTERM or train.stop_after
    last_metrics: dict
    workdir: str


@dataclasses.dataclass
class Job:
    """Everything built from a config before touching the workdir."""

    config: Any
    mesh: Any
    model_cfg: Any
    phases: list
    schedule: Callable
    tx: Any
    spec: Any
    step_opts: StepOptions
    compiler_options: dict | None = None  # train.compiler_options: XLA options of the steps
    settings: TrainJobConfig | None = None  # the typed, validated job config

    def jitted_train_step(self, keys=BATCH_KEYS):
        """The train step, jitted with the state's shardings (donated)."""
        step = make_train_step(
            self.spec.graphdef, self.model_cfg, self.tx, self.schedule, self.step_opts
        )
        return jit_train_step(
            step, self.spec, self.mesh, keys, compiler_options=self.compiler_options
        )

    def jitted_eval_step(self):
        step = make_eval_step(self.spec.graphdef, self.model_cfg, self.step_opts)
        return jit_eval_step(step, self.spec, self.mesh, compiler_options=self.compiler_options)


def build_job(config, *, devices=None) -> Job:
    """Validate ``config`` and build mesh, schedule, optimizer and the abstract state."""
    devices = list(jax.devices() if devices is None else devices)
    settings = job_settings(config)
    try:
        shape = settings.check_devices(len(devices))
    except ConfigError as e:
        raise TrainConfigError(str(e)) from e
    mesh = create_mesh(shape, devices=devices)
    mcfg, t, o = settings.model, settings.train, settings.optimizer
    try:
        phases = parse_phases(plain(t.phases), t.steps)
        base = make_schedule(
            o.schedule,
            lr=o.lr,
            total_steps=t.steps,
            warmup_steps=o.warmup_steps,
            warmup_fraction=o.warmup_fraction,
            decay_fraction=o.decay_fraction,
            decay_shape=o.decay_shape,
            min_lr_ratio=o.min_lr_ratio,
        )
        schedule = phase_schedule(phases, o.lr, base)
        abstract_params = nnx.to_pure_dict(nnx.state(abstract_model(mcfg)))
        tx = make_optimizer(o, schedule, abstract_params, freeze=t.freeze, trainable=t.trainable)
    except ValueError as e:
        raise TrainConfigError(str(e)) from e
    spec = state_spec(mcfg, tx, mesh)
    opts = StepOptions(micro_batches=t.micro_batches, z_loss=t.z_loss, loss_chunk=t.loss_chunk,
                       loss_normalisation=t.loss_normalisation)
    return Job(config, mesh, mcfg, phases, schedule, tx, spec, opts,
               dict(t.compiler_options) or None, settings)


# Jitted steps of recent jobs, so that train() called again in the same process (resume in a
# notebook, tests) reuses the compiled step instead of tracing and compiling it again. The
# key is the whole config except the fields below, which the steps provably do not read
# (they steer the loop, its files and its data); a field added later is in the key unless
# it is added here, so the cache can only miss, never return a step of another config.
_JOB_CACHE: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()
_JOB_CACHE_SIZE = 4
_NOT_IN_STEP = {
    "train": ("stop_after", "init_params", "log_every", "max_nonfinite", "profile_start",
              "profile_steps"),
    "checkpoint": "*",
    "data": "*",
    "eval": ("batches",),
}


def _step_key(config, devices) -> str:
    values = plain(config)
    for section, fields in _NOT_IN_STEP.items():
        if section not in values:
            continue
        if fields == "*":
            values.pop(section)
        else:
            for f in fields:
                values[section].pop(f, None)
    values.setdefault("eval", {})["every"] = int(config.eval.every) > 0  # eval step or not
    values["devices"] = [d.id for d in devices]
    return json.dumps(values, sort_keys=True, default=str)


def _compiled_job(config, devices=None):
    devices = list(jax.devices() if devices is None else devices)
    key = _step_key(config, devices)
    if key in _JOB_CACHE:
        _JOB_CACHE.move_to_end(key)
        job, train_fn, eval_fn = _JOB_CACHE[key]
        job = dataclasses.replace(job, config=config, settings=job_settings(config))
        return job, train_fn, eval_fn
    job = build_job(config, devices=devices)
    train_fn = job.jitted_train_step()
    eval_fn = job.jitted_eval_step() if job.settings.eval.every > 0 else None
    _JOB_CACHE[key] = (job, train_fn, eval_fn)
    while len(_JOB_CACHE) > _JOB_CACHE_SIZE:
        _JOB_CACHE.popitem(last=False)
    return job, train_fn, eval_fn


def _load_init_params(job: Job, directory: str):
    """Parameters of a params-only checkpoint (SFT start), shape-checked by name."""
    if not os.path.isdir(directory):
        raise TrainConfigError(f"train.init_params: {directory} is not a directory")
    saved_cfg = load_model_config(directory)
    bad = shape_problems(
        shapes(job.spec.abstract["params"]),
        shapes(nnx.to_pure_dict(nnx.state(abstract_model(saved_cfg)))),
        unexpected=False,
    )
    if bad:
        raise CheckpointMismatchError(
            f"train.init_params {directory} does not match config.model:\n  " + "\n  ".join(bad)
        )
    non_shape = {
        k: getattr(job.model_cfg, k)
        for k in ("compute_dtype", "scan_layers", "remat_policy", "attention_impl")
    }
    model = load_params(directory, mesh=job.mesh, **non_shape)
    return nnx.to_pure_dict(nnx.state(model))


# ============================================================================ agreement
def _max_over_processes(value: int) -> int:
    """The largest ``value`` of all processes, on every process (a collective)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def _on_process_0(flag: bool) -> bool:
    """Process 0's ``flag``, on every process (a collective: every process calls it)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _preemption_service() -> bool:
    """Whether jax.distributed runs its preemption sync manager (multi-host runs)."""
    if jax.process_count() == 1:
        return False
    try:
        from jax._src import distributed

        return distributed.global_state.preemption_sync_manager is not None
    except (ImportError, AttributeError):  # pragma: no cover - jax internals moved
        return False


class StopSignal:
    """SIGTERM -> stop at the next step boundary, agreed by every process.

    The decision is collective: each step every process contributes its own flag (SIGTERM
    may reach only one host) and all stop when any has it, at the same step, and save
    together. When jax.distributed's preemption service is running it has its own SIGTERM
    notifier (installed outside Python) that tells every process to stop at the same sync
    point (``reached_preemption_sync_point``): then no Python handler is installed, since it
    would replace that notifier and the pod's preemption notice would be lost.
    """

    def __init__(self):
        self.received = False
        self._old = None
        self.uses_preemption_service = _preemption_service()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if self.uses_preemption_service and current is None:
            log.info("SIGTERM is handled by jax.distributed's preemption notifier")
            return
        self._old = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        log.warning("SIGTERM: saving a checkpoint at the next step boundary, then exiting")
        self.received = True

    def uninstall(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None

    def should_stop(self, step: int) -> bool:
        """Every process calls this after every step and gets the same answer."""
        stop = _max_over_processes(int(self.received)) > 0
        if self.uses_preemption_service:
            from jax.experimental import multihost_utils

            stop = bool(multihost_utils.reached_preemption_sync_point(step)) or stop
        return stop


# ============================================================================ the trainer
class Trainer:
    """A training run: ``Trainer(config, workdir).add_hook(fn, every=10).run()``.

    Construction validates everything that can be checked before training (config, mesh,
    batch layout over processes, checkpoint shapes, init params, the data source) and
    writes nothing; ``run()`` creates the workdir, restores the latest checkpoint (with the
    data iterator and hook states), trains to ``train.steps`` (or ``train.stop_after`` more
    steps, or a SIGTERM) calling the hooks after each step, and exports the params at the
    end of training.
    """

    def __init__(self, config, workdir: str, *, devices=None, hooks=()):
        self.workdir = check_workdir(workdir)
        self.config = config
        self.job, self.train_fn, self.eval_fn = _compiled_job(config, devices)
        self.settings = settings = self.job.settings
        t = settings.train
        mesh = self.job.mesh
        try:
            self.layout = host_batch_layout(mesh, t.batch_size)
        except ShardingError as e:
            raise TrainConfigError(f"train.batch_size over the mesh's processes: {e}") from e
        self.ckpt_dir = os.path.join(self.workdir, "checkpoints")
        self.latest = self._probe_checkpoints()
        self.init_params = None
        if self.latest is None and t.init_params:
            self.init_params = _load_init_params(self.job, t.init_params)
        # Data: fail on a bad source before anything is written.
        self.phase = phase_index(self.job.phases, self.latest or 0)
        self.iterator = self._iterator("train", self.job.phases[self.phase].mixture or None)
        self.total_steps = t.steps
        self.tokens_per_step = t.batch_size * t.seq_len
        self.flops_per_token = self.job.model_cfg.train_flops_per_token(t.seq_len)
        self.timing = StepTiming()
        self.last_metrics: dict = {}
        self.hooks: list[Hook] = []
        self._n_record_hooks = 0  # the last hooks (logging, profile, checkpoint): after the stop
        self._extra_hooks = list(hooks)
        self.state = None
        self.checkpointer = None

    # ------------------------------------------------------------------ set-up pieces
    def _probe_checkpoints(self) -> int | None:
        # Process 0's view, taken before any process can create the directory: a process that
        # opened a checkpoint manager alone would run its collectives out of step with the rest.
        if not _on_process_0(os.path.isdir(self.ckpt_dir)):
            return None
        probe = Checkpointer(self.ckpt_dir)
        try:
            latest = probe.latest_step()
            if latest is not None:
                probe.check_compatible(latest, self.job.spec.abstract)
        finally:
            probe.close()
        return latest

    def _iterator(self, split: str, mixture=None) -> HostBatches:
        return host_iterator(self.settings, self.layout, split=split, mixture=mixture)

    def add_hook(self, hook, every: int = 1, *, name: str | None = None) -> Hook:
        """Add a ``Hook``, or a function ``fn(info)`` called every ``every`` steps."""
        if not isinstance(hook, Hook):
            hook = FunctionHook(hook, every, name=name)
        names = {h.name for h in self.hooks + self._extra_hooks}
        if hook.name in names:
            base, i = hook.name, 2
            while f"{base}_{i}" in names:
                i += 1
            hook.name = f"{base}_{i}"  # state_dict keys must be unique
        self._extra_hooks.append(hook)
        return hook

    def _all_hooks(self, first_step: int) -> list[Hook]:
        """Evaluation, the added hooks, logging, profiling, checkpointing: in this order, so
        added hooks see the eval metrics and may add their own to the logged record, and the
        checkpoint of a step holds what every hook did at that step."""
        t, ck = self.settings.train, self.settings.checkpoint
        hooks: list[Hook] = []
        if self.eval_fn is not None:
            hooks.append(EvalHook(self.settings.eval.every, self.total_steps))
        hooks += self._extra_hooks
        n_step_hooks = len(hooks)
        hooks.append(LoggingHook(self.workdir, t.log_every, self.total_steps, first_step))
        if t.profile_steps > 0:
            hooks.append(ProfileHook(self.workdir, t.profile_start, t.profile_steps))
        hooks.append(CheckpointHook(ck.every))
        self._n_record_hooks = len(hooks) - n_step_hooks
        return hooks

    # ------------------------------------------------------------------ used by hooks
    def evaluate(self, params) -> dict:
        """Held-out loss over ``eval.batches`` batches (fewer if the held-out set ends).

        Multi-host: every process runs the same number of eval steps (each a collective).
        A process whose held-out shard ended while another still has batches feeds
        zero-weight batches, which add nothing to the loss.
        """
        return evaluate(self.job, self.eval_fn, params, self.layout)

    def hook_states(self) -> dict:
        """{hook name: state_dict()} of the hooks that keep state (saved in checkpoints)."""
        states = {h.name: h.state_dict() for h in self.hooks}
        return {name: state for name, state in states.items() if state is not None}

    def save_checkpoint(self, step: int, *, force: bool = False) -> None:
        data_state = {
            "phase": self.phase,
            "iterators": gather_json(self.iterator.get_state()),
            "hooks": self.hook_states(),
        }
        self.checkpointer.save(step, self.state, data_state, self.config_dict, force=force)

    # ------------------------------------------------------------------ the run
    def _restore_or_init(self):
        spec, pid, nproc = self.job.spec, jax.process_index(), jax.process_count()
        if self.latest is None:
            return init_state(
                self.job.model_cfg, self.job.tx, self.job.mesh, spec,
                seed=self.settings.seed, params=self.init_params,
            ), {}
        state, data_item, _ = self.checkpointer.restore(self.latest, spec.abstract)
        iters = data_item.get("iterators", [])
        if len(iters) != nproc:
            raise TrainConfigError(
                f"checkpoint {self.latest} holds data iterator states of {len(iters)} processes "
                f"but this run has {nproc}; resume with the same process count"
            )
        self.iterator.set_state(iters[pid])
        if int(data_item.get("phase", 0)) != self.phase:  # saved right at a phase boundary
            self._enter_phase(self.phase)
        log.info("resumed from step %d (phase %d)", self.latest, self.phase)
        return state, data_item.get("hooks", {}) or {}

    def _enter_phase(self, p: int) -> None:
        self.phase = p
        mixture = self.job.phases[p].mixture or self.iterator.default_mixture
        self.iterator.set_mixture_weights(mixture)

    def run(self) -> TrainResult:
        config, t, ck = self.config, self.settings.train, self.settings.checkpoint
        # ------------------------------------------------------------ commit: files from here
        os.makedirs(self.workdir, exist_ok=True)
        self.checkpointer = Checkpointer(
            self.ckpt_dir, keep=ck.keep, async_save=ck.async_save,
            replica_parallel=ck.replica_parallel,
        )
        self.config_dict = plain(config)
        if jax.process_index() == 0:
            write_json(os.path.join(self.workdir, "config.json"), self.config_dict)
        stop = StopSignal()
        stopped_early = False
        try:
            self.state, saved_hooks = self._restore_or_init()
            step = first_step = int(jax.device_get(self.state["step"]))
            self.hooks = self._all_hooks(first_step)
            for hook in self.hooks:
                if hook.name in saved_hooks:
                    hook.load_state_dict(saved_hooks[hook.name])
            for hook in self.hooks:
                hook.on_start(self, step)
            stop_after = t.stop_after
            run_end = min(self.total_steps, step + stop_after) if stop_after > 0 else self.total_steps
            local_batch, seq_len = self.layout.local_batch, t.seq_len
            max_nonfinite = t.max_nonfinite
            info = None
            stop.install()
            with jax.set_mesh(self.job.mesh):
                while step < run_end:
                    p = phase_index(self.job.phases, step)
                    if p != self.phase:
                        self._enter_phase(p)
                        log.info("phase %d (%s) from step %d", p, self.job.phases[p].name, step)
                    self.timing.begin()
                    local = next(self.iterator)
                    problem = batch_problem(local, local_batch, seq_len)
                    if problem:
                        raise TrainConfigError(f"data.source={self.settings.data.source!r}: {problem}")
                    batch = make_global_batch(_batch_arrays(local), self.job.mesh,
                                              self.layout.global_batch, dtype=np.int32)
                    self.state, m = self.train_fn(self.state, batch)
                    step += 1
                    m = jax.device_get(m)
                    self.timing.end(first_of_run=step == first_step + 1)
                    if int(m["nonfinite"]) >= max_nonfinite:
                        raise TrainingAborted(
                            f"{int(m['nonfinite'])} non-finite steps in a row (up to step {step}); "
                            f"the updates were skipped and the last good checkpoint is kept. Lower "
                            f"optimizer.lr, raise optimizer.warmup_steps or check the data."
                        )
                    if int(m["skipped"]):
                        log.warning("step %d: non-finite loss/gradient, update skipped", step)
                    info = StepInfo(step, self.state, self._record(m, step), self,
                                    final=step == run_end)
                    # Evaluation and added hooks, then the stop decision (a SIGTERM that
                    # arrived meanwhile counts for this step), then logging, profiling and
                    # the checkpoint, which see it as the run's final step.
                    n_step_hooks = len(self.hooks) - self._n_record_hooks
                    for hook in self.hooks[:n_step_hooks]:
                        if hook.due(info):
                            hook(info)
                    stopping = stop.should_stop(step)
                    info.stopping, info.final = stopping, info.final or stopping
                    for hook in self.hooks[n_step_hooks:]:
                        if hook.due(info):
                            hook(info)
                    if stopping:
                        stopped_early = True
                        log.warning("stopped at step %d on SIGTERM (checkpoint saved)", step)
                        break
                if step < self.total_steps:
                    stopped_early = True  # train.stop_after or SIGTERM
                self.checkpointer.wait()
                if info is not None:
                    for hook in self.hooks:
                        hook.on_end(info)
                if step >= self.total_steps and ck.export_params:
                    export_params(self.job, self.state["params"],
                                  os.path.join(self.workdir, "params"))
        finally:
            stop.uninstall()
            for hook in self.hooks:
                hook.close()
            self.checkpointer.close()
        return TrainResult(step=step, stopped_early=stopped_early,
                           last_metrics=self.last_metrics, workdir=self.workdir)

    def _record(self, m: dict, step: int) -> dict:
        rec = {k: float(v) for k, v in m.items() if k != "nonfinite"}
        if not self.job.step_opts.z_loss:
            rec.pop("z_loss", None)
        rec.update(step=step, phase=self.phase, tokens=step * self.tokens_per_step)
        return rec


def host_iterator(settings: TrainJobConfig, layout: HostBatchLayout, *, split="train",
                  mixture=None) -> HostBatches:
    """This process's batches of the job's data (``train.host_data``), one data iterator per
    logical shard; ``settings`` is the typed job config (parsed once, not per shard)."""

    def make(shard_index, shard_count, rows):
        return data_lib.make_iterator(
            settings, split=split, mixture=mixture, shard_index=shard_index,
            shard_count=shard_count, batch_size=rows,
        )

    try:
        return HostBatches(make, layout, settings.data.shards)
    except DataShardError as e:
        raise TrainConfigError(str(e)) from e


def _batch_arrays(local: dict) -> dict:
    return {k: v for k, v in local.items() if k in BATCH_KEYS or k == "labels"}


def evaluate(job: Job, eval_fn, params, layout: HostBatchLayout) -> dict:
    """Held-out loss and perplexity over ``eval.batches`` batches (see Trainer.evaluate)."""
    it = host_iterator(job.settings, layout, split="eval")
    nll = count = 0.0
    empty = None
    for _ in range(job.settings.eval.batches):
        try:
            local = _batch_arrays(next(it))
        except StopIteration:  # this process's held-out shard is exhausted
            local = None
        if _max_over_processes(int(local is not None)) == 0:
            break
        if local is None:
            if empty is None:
                shape = (layout.local_batch, job.settings.train.seq_len)
                empty = {k: np.zeros(shape, np.int32) for k in BATCH_KEYS}
            local = empty
        batch = make_global_batch(local, job.mesh, layout.global_batch, dtype=np.int32)
        out = jax.device_get(eval_fn(params, batch))
        nll += float(out["nll"])
        count += float(out["targets"])
    loss = nll / max(count, 1.0)
    return {"eval_loss": loss, "eval_ppl": float(math.exp(min(loss, 50.0)))}


def train(
    config, workdir: str, *, on_step: Callable[[int], None] | None = None, hooks=(), devices=None
) -> TrainResult:
    """Train (or resume) ``config`` in ``workdir``; see ``Trainer``. ``hooks``: extra ``Hook``s
    (after the built-in ones); ``on_step(step)`` is called after every step."""
    trainer = Trainer(config, workdir, devices=devices, hooks=hooks)
    if on_step is not None:
        trainer.add_hook(lambda info: on_step(info.step), every=1, name="on_step")
    return trainer.run()


def export_params(job: Job, params, directory: str) -> str:
    """Write a params-only checkpoint (``eurollm_jax.checkpoint.load_params`` reads it)."""
    model = params_to_model(job.spec.graphdef, params)
    return save_params(model, directory, force=True)


def export_from_workdir(config, workdir: str, out_dir: str, step: int | None = None) -> str:
    """Export the params of a trainer checkpoint (latest by default) to ``out_dir``."""
    job = build_job(config)
    checkpointer = Checkpointer(os.path.join(os.path.abspath(workdir), "checkpoints"))
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
        params = checkpointer.restore_params(step, job.spec.abstract["params"])
    finally:
        checkpointer.close()
    return export_params(job, params, out_dir)
