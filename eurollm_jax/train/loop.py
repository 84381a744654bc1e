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
import time
from typing import Any, Callable

import jax
import numpy as np
from flax import nnx

from eurollm_jax.checkpoint import load_params, save_params
from eurollm_jax.checkpoint.params import load_model_config
from eurollm_jax.data import BATCH_KEYS
from eurollm_jax.fileio import write_json
from eurollm_jax.model import abstract_model
from eurollm_jax.parallel import batch_sharding, create_mesh
from eurollm_jax.parallel.hardware import mfu
from eurollm_jax.train import data as data_lib
from eurollm_jax.train import metrics as metrics_lib
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
    check_train_config,
    check_workdir,
    model_config,
)

log = logging.getLogger(__name__)


class TrainingAborted(RuntimeError):
    """Training stopped because of repeated non-finite losses or gradients."""


@dataclasses.dataclass
class TrainResult:
    step: int  # steps completed (the state's step)
    stopped_early: bool  # SIGTERM or train.stop_after
    last_metrics: dict
    workdir: str


def _to_plain(x):
    if hasattr(x, "to_dict"):
        x = x.to_dict()
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


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
    shape = check_train_config(config, len(devices), jax.process_count())
    mesh = create_mesh(shape, devices=devices)
    mcfg = model_config(config)
    t, o = config.train, config.optimizer
    steps = int(t.steps)
    try:
        phases = parse_phases(_to_plain(t.phases), steps)
        base = make_schedule(
            o.schedule,
            lr=float(o.lr),
            total_steps=steps,
            warmup_steps=int(o.warmup_steps),
            warmup_fraction=float(o.warmup_fraction),
            decay_fraction=float(o.decay_fraction),
            decay_shape=o.decay_shape,
            min_lr_ratio=float(o.min_lr_ratio),
        )
        schedule = phase_schedule(phases, float(o.lr), base)
        abstract_params = nnx.to_pure_dict(nnx.state(abstract_model(mcfg)))
        tx = make_optimizer(
            _to_plain(o),
            schedule,
            abstract_params,
            freeze=tuple(t.freeze),
            trainable=tuple(t.trainable),
        )
    except ValueError as e:
        raise TrainConfigError(str(e)) from e
    spec = state_spec(mcfg, tx, mesh)
    opts = StepOptions(
        micro_batches=int(t.micro_batches),
        z_loss=float(t.z_loss),
        loss_chunk=int(t.get("loss_chunk", 0) or 0),
    )
    copts = _to_plain(t.get("compiler_options", None)) or None
    return Job(config, mesh, mcfg, phases, schedule, tx, spec, opts, copts)


# Jitted steps of recent jobs, so that train() called again in the same process (resume in a
# notebook, tests) reuses the compiled step instead of tracing and compiling it again. The
# key holds everything the step depends on; the values are pure functions of it.
_JOB_CACHE: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()
_JOB_CACHE_SIZE = 4
_STEP_KEYS = (
    "steps",
    "batch_size",
    "seq_len",
    "micro_batches",
    "z_loss",
    "freeze",
    "trainable",
    "phases",
    "loss_chunk",
    "compiler_options",
)


def _compiled_job(config, devices=None):
    devices = list(jax.devices() if devices is None else devices)
    key = json.dumps(
        {
            "model": _to_plain(config.model),
            "optimizer": _to_plain(config.optimizer),
            "mesh": _to_plain(config.mesh),
            "train": {k: _to_plain(config.train.get(k)) for k in _STEP_KEYS},
            "eval": int(config.eval.every) > 0,
            "devices": [d.id for d in devices],
        },
        sort_keys=True,
        default=str,
    )
    if key in _JOB_CACHE:
        _JOB_CACHE.move_to_end(key)
        job, train_fn, eval_fn = _JOB_CACHE[key]
        return dataclasses.replace(job, config=config), train_fn, eval_fn
    job = build_job(config, devices=devices)
    train_fn = job.jitted_train_step()
    eval_fn = job.jitted_eval_step() if int(config.eval.every) > 0 else None
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


def _global_batch(local: dict, sharding) -> dict:
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v, np.int32))
        for k, v in local.items()
        if k in BATCH_KEYS or k == "labels"
    }


def _on_process_0(flag: bool) -> bool:
    """Process 0's ``flag``, on every process (a collective: every process calls it)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


class _StopFlag:
    def __init__(self):
        self.set = False
        self._old = None

    def install(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        log.warning("SIGTERM: saving a checkpoint at the next step boundary, then exiting")
        self.set = True

    def uninstall(self):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None


def _should_stop(flag: _StopFlag, step: int) -> bool:
    if jax.process_count() == 1:
        return flag.set
    try:  # every process agrees on the same step (jax.distributed's preemption sync)
        from jax.experimental import multihost_utils

        return bool(multihost_utils.reached_preemption_sync_point(step)) or flag.set
    except Exception:  # pragma: no cover - no preemption service
        return flag.set


def evaluate(job: Job, eval_fn, params, shard_index: int, shard_count: int) -> dict:
    cfg = job.config
    it = data_lib.make_iterator(cfg, split="eval", shard_index=shard_index, shard_count=shard_count)
    sharding = batch_sharding(job.mesh, 2)
    nll = count = 0.0
    for _ in range(int(cfg.eval.batches)):
        try:
            local = next(it)
        except StopIteration:  # a finite held-out set smaller than eval.batches
            break
        out = jax.device_get(eval_fn(params, _global_batch(local, sharding)))
        nll += float(out["nll"])
        count += float(out["targets"])
    loss = nll / max(count, 1.0)
    return {"eval_loss": loss, "eval_ppl": float(math.exp(min(loss, 50.0)))}


def train(
    config, workdir: str, *, on_step: Callable[[int], None] | None = None, devices=None
) -> TrainResult:
    """Train (or resume) ``config`` in ``workdir``. See the module docstring."""
    workdir = check_workdir(workdir)
    job, train_fn, eval_fn = _compiled_job(config, devices)
    t, ck = config.train, config.checkpoint
    mesh, spec = job.mesh, job.spec
    pid, nproc = jax.process_index(), jax.process_count()
    local_batch = int(t.batch_size) // nproc

    ckpt_dir = os.path.join(workdir, "checkpoints")
    latest = None
    # Process 0's view, taken before any process can create the directory: a process that
    # opened a checkpoint manager alone would run its collectives out of step with the others.
    if _on_process_0(os.path.isdir(ckpt_dir)):
        probe = Checkpointer(ckpt_dir)
        try:
            latest = probe.latest_step()
            if latest is not None:
                probe.check_compatible(latest, spec.abstract)
        finally:
            probe.close()
    init_params = None
    if latest is None and t.init_params:
        init_params = _load_init_params(job, t.init_params)

    # Data: fail on a bad source before anything is written.
    start_phase = phase_index(job.phases, latest or 0)
    mixture = job.phases[start_phase].mixture
    it = data_lib.make_iterator(config, mixture=mixture, shard_index=pid, shard_count=nproc)

    # ---------------------------------------------------------------- commit: files from here
    os.makedirs(workdir, exist_ok=True)
    checkpointer = Checkpointer(
        ckpt_dir,
        keep=int(ck.keep),
        async_save=bool(ck.async_save),
        replica_parallel=bool(ck.get("replica_parallel", False)),
    )
    config_dict = _to_plain(config)
    if pid == 0:
        write_json(os.path.join(workdir, "config.json"), config_dict)

    if latest is not None:
        state, data_item, _ = checkpointer.restore(latest, spec.abstract)
        saved_phase = int(data_item.get("phase", 0))
        iters = data_item.get("iterators", [])
        pipeline = config.data.source == "pipeline"
        if saved_phase == start_phase or pipeline:
            if len(iters) != nproc:
                raise TrainConfigError(
                    f"checkpoint {latest} holds data iterator states of {len(iters)} processes but "
                    f"this run has {nproc}; resume with the same process count"
                )
            it.set_state(iters[pid])
            if saved_phase != start_phase:  # saved right at a phase boundary
                it = data_lib.switch_mixture(
                    it, config, job.phases[start_phase].mixture, shard_index=pid, shard_count=nproc
                )
        log.info("resumed from step %d (phase %d)", latest, start_phase)
    else:
        state = init_state(
            job.model_cfg, job.tx, mesh, spec, seed=int(config.seed), params=init_params
        )
    step = int(jax.device_get(state["step"]))

    metrics_path = os.path.join(workdir, "metrics.jsonl")
    writer = tb = None
    if pid == 0:
        metrics_lib.truncate_jsonl(metrics_path, step)
        writer = metrics_lib.JsonlWriter(metrics_path)
        tb = metrics_lib.TensorBoardWriter(os.path.join(workdir, "tensorboard"))

    total = int(t.steps)
    stop_after = int(t.stop_after or 0)
    run_end = min(total, step + stop_after) if stop_after > 0 else total
    device_kind, num_devices = mesh.devices.flat[0].device_kind, mesh.devices.size
    flops_per_token = job.model_cfg.train_flops_per_token(int(t.seq_len))
    tokens_per_step = int(t.batch_size) * int(t.seq_len)
    sharding = batch_sharding(mesh, 2)
    max_nonfinite = int(t.max_nonfinite)
    ckpt_every = int(ck.every)
    log_every = int(t.log_every)

    flag = _StopFlag()
    flag.install()
    phase = start_phase
    last_metrics: dict = {}
    stopped_early = False
    interval_start, interval_steps, reset_interval = None, 0, False
    run_start = time.time()
    first_step = step

    def save(at: int, force: bool = False):
        data_state = {"phase": phase, "iterators": gather_json(it.get_state())}
        checkpointer.save(at, state, data_state, config_dict, force=force)

    try:
        with jax.set_mesh(mesh):
            while step < run_end:
                p = phase_index(job.phases, step)
                if p != phase:
                    phase = p
                    it = data_lib.switch_mixture(
                        it, config, job.phases[p].mixture, shard_index=pid, shard_count=nproc
                    )
                    log.info("phase %d (%s) from step %d", p, job.phases[p].name, step)
                local = next(it)
                problem = batch_problem(local, local_batch, int(t.seq_len))
                if problem:
                    raise TrainConfigError(f"data.source={config.data.source!r}: {problem}")
                state, m = train_fn(state, _global_batch(local, sharding))
                step += 1
                m = jax.device_get(m)
                now = time.time()
                if interval_start is None:  # the first step compiled: time from here on
                    interval_start, interval_steps = now, 0
                else:
                    interval_steps += 1
                if int(m["nonfinite"]) >= max_nonfinite:
                    raise TrainingAborted(
                        f"{int(m['nonfinite'])} non-finite steps in a row (up to step {step}); the "
                        f"updates were skipped and the last good checkpoint is kept. Lower "
                        f"optimizer.lr, raise optimizer.warmup_steps or check the data."
                    )
                if int(m["skipped"]):
                    log.warning("step %d: non-finite loss/gradient, update skipped", step)
                do_eval = eval_fn is not None and (
                    step % int(config.eval.every) == 0 or step == total
                )
                if step % log_every == 0 or step == run_end or do_eval:
                    rec = {k: float(v) for k, v in m.items() if k not in ("nonfinite",)}
                    rec["step"] = step
                    rec["phase"] = phase
                    rec["tokens"] = step * tokens_per_step
                    if interval_steps > 0:
                        dt = (now - interval_start) / interval_steps
                        rec["step_time_s"] = dt
                        rec["tokens_per_s"] = tokens_per_step / dt
                        u = mfu(flops_per_token, rec["tokens_per_s"], device_kind, num_devices)
                        if u is not None:
                            rec["mfu"] = u
                    if do_eval:
                        rec.update(evaluate(job, eval_fn, state["params"], pid, nproc))
                    if not job.step_opts.z_loss:
                        rec.pop("z_loss", None)
                    last_metrics = rec
                    if pid == 0:
                        writer.write(rec)
                        tb.scalars(step, {k: v for k, v in rec.items() if k != "step"})
                        per_step = rec.get(
                            "step_time_s", (now - run_start) / max(step - first_step, 1)
                        )
                        eta = per_step * (total - step)
                        print(metrics_lib.progress_line(step, total, rec, eta), flush=True)
                    reset_interval = True
                if on_step is not None:
                    on_step(step)
                stop = _should_stop(flag, step)
                if stop or step == run_end or (ckpt_every > 0 and step % ckpt_every == 0):
                    save(step, force=stop)
                if reset_interval:  # time steps only: not logging, eval or checkpointing
                    interval_start, interval_steps, reset_interval = time.time(), 0, False
                if stop:
                    stopped_early = True
                    log.warning("stopped at step %d on SIGTERM (checkpoint saved)", step)
                    break
            if step < total and not stopped_early:
                stopped_early = True  # train.stop_after
            checkpointer.wait()
            if step >= total and bool(ck.export_params):
                export_dir = os.path.join(workdir, "params")
                export_params(job, state["params"], export_dir)
    finally:
        flag.uninstall()
        checkpointer.close()
        if writer is not None:
            writer.close()
            tb.close()
    return TrainResult(
        step=step, stopped_early=stopped_early, last_metrics=last_metrics, workdir=workdir
    )


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
