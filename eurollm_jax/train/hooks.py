"""Training hooks: everything the loop does besides the step (in the spirit of Levanter's
``trainer.add_hook(fn, every=n)`` and clu's periodic actions).

A hook is called after a train step when it is due (``every`` steps, and on the run's last
step when ``at_end``), with a ``StepInfo``: the step count, the train state, the step's
metrics on the host (a hook may add to them: evaluation adds ``eval_loss`` before logging
writes the record), and the trainer (its job, data iterator, workdir and phase). Order:
evaluation, then the added hooks in the order they were added, then the collective stop
decision (SIGTERM / preemption), then logging, profiling and checkpointing (so the
checkpoint of a step holds what every hook did at that step). Evaluation and added hooks
see ``final`` for the last step of the run as planned; a preemption is known only to the
later ones (``stopping``).

A hook that keeps state across steps (a running average, a learned data mixture) returns
it from ``state_dict()`` as JSON; it is saved in every checkpoint with the step and given
back to ``load_state_dict`` on resume, so a resumed run continues the hook exactly. A hook
may change the data mixture with ``info.iterator.set_mixture_weights({...})``: it takes
effect from the next batch on and is saved with the iterator's state. Every process runs the
same hooks on the same (global) metrics, so they must decide the same way on every process.

``Hook.on_end(info)`` runs once after the last step of the run (also when it stopped early).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable

import jax

from eurollm_jax.train import metrics as metrics_lib

if TYPE_CHECKING:  # pragma: no cover
    from eurollm_jax.train.loop import Trainer

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StepInfo:
    """What a hook sees after a step."""

    step: int  # steps completed (the state's step)
    state: dict  # the train state: device arrays, read-only for hooks
    metrics: dict  # this step's metrics as host floats; hooks may add keys
    trainer: "Trainer"
    final: bool = False  # the last step of this run (steps reached, stop_after or preemption)
    stopping: bool = False  # the run stops after this step (preemption / SIGTERM)

    @property
    def iterator(self):
        """The training data iterator (``set_mixture_weights`` / ``mixture_weights``)."""
        return self.trainer.iterator

    @property
    def job(self):
        return self.trainer.job


class Hook:
    """Base class. Subclasses set ``name`` and implement ``__call__``; ``every`` <= 0 means
    only at the end (``at_end``) or never."""

    name: str = "hook"
    every: int = 1
    at_end: bool = False

    def due(self, info: StepInfo) -> bool:
        return (self.every > 0 and info.step % self.every == 0) or (self.at_end and info.final)

    def __call__(self, info: StepInfo) -> None:
        raise NotImplementedError

    def state_dict(self) -> Any:
        """JSON-serialisable state saved with each checkpoint (None: nothing to save)."""
        return None

    def load_state_dict(self, state: Any) -> None:
        """Restore what ``state_dict`` returned (called on resume, before the first step)."""

    def on_start(self, trainer: "Trainer", step: int) -> None:
        """Before the first step of the run (``step``: steps already done, after a resume)."""

    def on_end(self, info: StepInfo) -> None:
        """After the last step of the run."""

    def close(self) -> None:
        """Release files; called once when the run ends, also on errors."""


class FunctionHook(Hook):
    """``fn(info)`` every ``every`` steps."""

    def __init__(self, fn: Callable[[StepInfo], None], every: int = 1, *, name: str | None = None,
                 at_end: bool = False):
        self.fn, self.every, self.at_end = fn, int(every), at_end
        self.name = name or getattr(fn, "__name__", "function")

    def __call__(self, info: StepInfo) -> None:
        self.fn(info)


# ============================================================================ built-in hooks


class EvalHook(Hook):
    """Held-out loss every ``eval.every`` steps and at the end of training (``eval_loss``,
    ``eval_ppl`` added to the step's metrics)."""

    name = "eval"

    def __init__(self, every: int, total_steps: int):
        self.every, self.total = int(every), int(total_steps)

    def due(self, info: StepInfo) -> bool:
        return self.every > 0 and (info.step % self.every == 0 or info.step == self.total)

    def __call__(self, info: StepInfo) -> None:
        info.metrics.update(info.trainer.evaluate(info.state["params"]))


class LoggingHook(Hook):
    """metrics.jsonl, TensorBoard and the progress line on process 0: every ``log_every``
    steps, at the end of the run, and whenever an evaluation ran."""

    name = "logging"
    at_end = True

    def __init__(self, workdir: str, every: int, total_steps: int, first_step: int):
        self.every, self.total = int(every), int(total_steps)
        self.writer = self.tb = None
        self.path = os.path.join(workdir, "metrics.jsonl")
        if jax.process_index() == 0:
            metrics_lib.truncate_jsonl(self.path, first_step)
            self.writer = metrics_lib.JsonlWriter(self.path)
            self.tb = metrics_lib.TensorBoardWriter(os.path.join(workdir, "tensorboard"))

    def due(self, info: StepInfo) -> bool:
        return super().due(info) or "eval_loss" in info.metrics

    def __call__(self, info: StepInfo) -> None:
        trainer = info.trainer
        rec = dict(info.metrics)
        rec.update(trainer.timing.summary(trainer))
        trainer.last_metrics = rec
        if self.writer is None:
            return
        self.writer.write(rec)
        self.tb.scalars(info.step, {k: v for k, v in rec.items() if k != "step"})
        eta = trainer.timing.seconds_per_step() * (self.total - info.step)
        print(metrics_lib.progress_line(info.step, self.total, rec, eta), flush=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.tb.close()
            self.writer = self.tb = None


class CheckpointHook(Hook):
    """A checkpoint every ``checkpoint.every`` steps, at the end of the run, and when the run
    is stopped (preemption): state, data iterator states, hook states, config."""

    name = "checkpoint"
    at_end = True

    def __init__(self, every: int):
        self.every = int(every)

    def due(self, info: StepInfo) -> bool:
        return super().due(info) or info.stopping

    def __call__(self, info: StepInfo) -> None:
        info.trainer.save_checkpoint(info.step, force=info.stopping)


class ProfileHook(Hook):
    """A ``jax.profiler`` trace of ``steps`` steps starting after step ``start`` (written to
    ``WORKDIR/profile``, viewable in TensorBoard / Perfetto)."""

    name = "profile"

    def __init__(self, workdir: str, start: int, steps: int):
        self.dir = os.path.join(workdir, "profile")
        self.start, self.stop = int(start), int(start) + int(steps)
        self.active = False

    def on_start(self, trainer, step: int) -> None:
        if self.start <= step < self.stop:  # e.g. profile_start=0: from the first step
            self._begin()

    def _begin(self) -> None:
        jax.profiler.start_trace(self.dir)
        self.active = True

    def due(self, info: StepInfo) -> bool:
        return info.step in (self.start, self.stop) or (self.active and info.final)

    def __call__(self, info: StepInfo) -> None:
        if not self.active and info.step == self.start and not info.final:
            self._begin()
        elif self.active:
            jax.block_until_ready(info.state["params"])
            jax.profiler.stop_trace()
            self.active = False
            log.info("profile of steps %d-%d written to %s", self.start + 1, info.step, self.dir)

    def close(self) -> None:
        if self.active:
            jax.profiler.stop_trace()
            self.active = False


class StepTiming:
    """Wall time of the steps themselves (data + step + metrics), not of hooks; the first
    step of a run (compilation) is left out of throughput."""

    def __init__(self):
        self.durations: list[float] = []
        self.all_steps = 0.0
        self.counted = 0
        self._start = None

    def begin(self) -> None:
        self._start = time.perf_counter()

    def end(self, first_of_run: bool) -> None:
        dt = time.perf_counter() - self._start
        if not first_of_run:
            self.durations.append(dt)
            self.all_steps += dt
            self.counted += 1

    def seconds_per_step(self) -> float:
        return self.all_steps / self.counted if self.counted else float("nan")

    def summary(self, trainer) -> dict:
        """step_time_s, tokens_per_s and (on accelerators) mfu since the last summary."""
        if not self.durations:
            return {}
        from eurollm_jax.parallel.hardware import mfu

        dt = sum(self.durations) / len(self.durations)
        self.durations = []
        out = {"step_time_s": dt, "tokens_per_s": trainer.tokens_per_step / dt}
        mesh = trainer.job.mesh
        u = mfu(trainer.flops_per_token, out["tokens_per_s"], mesh.devices.flat[0].device_kind,
                mesh.devices.size)
        if u is not None:
            out["mfu"] = u
        return out
