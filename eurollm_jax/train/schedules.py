"""Learning-rate schedules and training phases.

Schedules are functions ``step -> learning rate`` (jnp scalars, jit-safe):

- ``wsd``: warmup-stable-decay, the EuroLLM "trapezoid": linear warm-up to the peak, a
  constant plateau, then a decay over the last ``decay_fraction`` of the run to
  ``min_lr_ratio * lr`` with shape ``linear``, ``cosine`` or ``1-sqrt``.
- ``cosine``: linear warm-up, then cosine decay to ``min_lr_ratio * lr`` at the last step.
- ``constant``: linear warm-up, then the peak.

Phases (``config.train.phases``) split one run into consecutive segments, each with its
own step count, data mixture and, optionally, its own LR segment, so EuroLLM's
multi-phase run with a final annealing phase is one run. A phase's ``lr`` is a dict of
multipliers of ``optimizer.lr``: ``{"start": 1.0, "end": 0.0, "shape": "linear",
"warmup_steps": 0}``. When no phase sets ``lr``, the global schedule spans all phases.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax.numpy as jnp

SCHEDULES = ("wsd", "cosine", "constant")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt", "constant")

Schedule = Callable[[Any], Any]


class ScheduleError(ValueError):
    """An LR schedule or phase list that cannot be built."""


def _decay(shape: str, frac):
    """Multiplier in [0, 1] going from 1 (frac=0) to 0 (frac=1)."""
    frac = jnp.clip(frac, 0.0, 1.0)
    if shape == "linear":
        return 1.0 - frac
    if shape == "cosine":
        return 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    if shape == "1-sqrt":
        return 1.0 - jnp.sqrt(frac)
    if shape == "constant":
        return jnp.ones_like(frac)
    raise ScheduleError(f"unknown decay shape {shape!r}; choose one of {DECAY_SHAPES}")


def resolve_warmup(total_steps: int, warmup_steps: int, warmup_fraction: float) -> int:
    """``warmup_steps`` when >= 0, else ``round(warmup_fraction * total_steps)``."""
    if warmup_steps is not None and warmup_steps >= 0:
        return int(warmup_steps)
    return int(round(warmup_fraction * total_steps))


def make_schedule(
    kind: str,
    *,
    lr: float,
    total_steps: int,
    warmup_steps: int = -1,
    warmup_fraction: float = 0.01,
    decay_fraction: float = 0.1,
    decay_shape: str = "linear",
    min_lr_ratio: float = 0.0,
) -> Schedule:
    """One of SCHEDULES over ``total_steps`` steps (0-based step, LR used by that step)."""
    if kind not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
    if decay_shape not in DECAY_SHAPES:
        raise ScheduleError(f"unknown decay shape {decay_shape!r}; choose one of {DECAY_SHAPES}")
    if total_steps <= 0:
        raise ScheduleError(f"total_steps must be positive, got {total_steps}")
    warmup = resolve_warmup(total_steps, warmup_steps, warmup_fraction)
    if warmup > total_steps:
        raise ScheduleError(
            f"warmup ({warmup} steps) is longer than the run ({total_steps} steps); lower "
            f"optimizer.warmup_steps (e.g. --config.optimizer.warmup_steps=0)"
        )
    if not 0.0 <= decay_fraction <= 1.0:
        raise ScheduleError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
    floor = min_lr_ratio * lr
    decay_steps = (
        int(round(decay_fraction * total_steps)) if kind == "wsd" else total_steps - warmup
    )
    decay_start = total_steps - decay_steps

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        # Warm-up reaches the peak at step == warmup (step 0 uses lr / warmup, never 0).
        warm = jnp.minimum(1.0, (step + 1.0) / max(warmup, 1)) if warmup > 0 else 1.0
        if kind == "constant":
            return lr * warm
        # +1: the first decay step is already below the plateau, the last one above the floor.
        frac = (step - decay_start + 1.0) / (decay_steps + 1.0)
        shape = decay_shape if kind == "wsd" else "cosine"
        decayed = floor + (lr - floor) * _decay(shape, frac)
        after = jnp.where(step >= decay_start, decayed, lr)
        return jnp.minimum(lr * warm, after) if warmup > 0 else after

    return schedule


@dataclasses.dataclass(frozen=True)
class Phase:
    """One segment of a run: steps [start, start + steps), a data mixture, an LR segment."""

    name: str
    start: int
    steps: int
    mixture: Mapping[str, float] | None = None
    lr: Mapping[str, Any] | None = None

    @property
    def end(self) -> int:
        return self.start + self.steps


def parse_phases(phases: Sequence[Mapping[str, Any]] | None, total_steps: int) -> list[Phase]:
    """Phases from config (a list of dicts); none -> one phase covering the whole run."""
    if not phases:
        return [Phase("main", 0, int(total_steps))]
    out, start = [], 0
    for i, p in enumerate(phases):
        p = dict(p)
        unknown = set(p) - {"name", "steps", "mixture", "lr"}
        if unknown:
            raise ScheduleError(
                f"phase {i}: unknown keys {sorted(unknown)}; known: name, steps, mixture, lr"
            )
        steps = int(p.get("steps", 0))
        if steps <= 0:
            raise ScheduleError(
                f"phase {i} ({p.get('name', i)}): steps must be positive, got {steps}"
            )
        lr = p.get("lr")
        if lr is not None:
            lr = dict(lr)
            bad = set(lr) - {"start", "end", "shape", "warmup_steps"}
            if bad:
                raise ScheduleError(
                    f"phase {i}: unknown lr keys {sorted(bad)}; "
                    "known: start, end, shape, warmup_steps"
                )
            if lr.get("shape", "linear") not in DECAY_SHAPES:
                raise ScheduleError(f"phase {i}: lr shape must be one of {DECAY_SHAPES}")
        mixture = p.get("mixture")
        out.append(
            Phase(
                str(p.get("name", f"phase{i}")),
                start,
                steps,
                dict(mixture) if mixture else None,
                lr,
            )
        )
        start += steps
    if start != total_steps:
        raise ScheduleError(
            f"the phases add up to {start} steps but train.steps is {total_steps}; make them equal "
            f"(train.steps is the total step count)"
        )
    return out


def phase_schedule(phases: Sequence[Phase], lr: float, fallback: Schedule) -> Schedule:
    """A schedule made of per-phase LR segments; phases without ``lr`` use ``fallback``."""
    if not any(p.lr for p in phases):
        return fallback

    def segment(p: Phase, step):
        local = step - p.start
        start_m = float(p.lr.get("start", 1.0))
        end_m = float(p.lr.get("end", start_m))
        shape = p.lr.get("shape", "linear")
        warmup = int(p.lr.get("warmup_steps", 0))
        frac = jnp.maximum(local - warmup, 0.0) / max(p.steps - warmup - 1, 1)
        mult = end_m + (start_m - end_m) * _decay(shape, frac)
        if warmup > 0:
            mult = jnp.where(local < warmup, start_m * (local + 1.0) / warmup, mult)
        return lr * mult

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        value = fallback(step)
        for p in phases:
            if p.lr:
                value = jnp.where((step >= p.start) & (step < p.end), segment(p, step), value)
        return value

    return schedule


def phase_index(phases: Sequence[Phase], step: int) -> int:
    """Index of the phase that contains ``step`` (the last phase past the end)."""
    for i, p in enumerate(phases):
        if step < p.end:
            return i
    return len(phases) - 1
