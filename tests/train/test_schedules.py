"""LR schedules (WSD with three decay shapes, cosine, constant) and phases."""

import numpy as np
import pytest

from eurollm_jax.train.schedules import (
    ScheduleError,
    make_schedule,
    parse_phases,
    phase_index,
    phase_schedule,
)


def values(schedule, n):
    return np.array([float(schedule(s)) for s in range(n)])


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_is_a_trapezoid(shape):
    lr = values(
        make_schedule(
            "wsd",
            lr=1.0,
            total_steps=100,
            warmup_steps=10,
            decay_fraction=0.2,
            decay_shape=shape,
            min_lr_ratio=0.1,
        ),
        100,
    )
    np.testing.assert_allclose(lr[:10], np.arange(1, 11) / 10, rtol=1e-6)  # warm-up
    np.testing.assert_allclose(lr[10:80], 1.0)  # stable
    decay = lr[80:]
    assert np.all(np.diff(decay) < 0) and decay[0] < 1.0 and decay[-1] > 0.1
    frac = (np.arange(80, 100) - 80 + 1) / 21
    expected = {
        "linear": 1 - frac,
        "cosine": 0.5 * (1 + np.cos(np.pi * frac)),
        "1-sqrt": 1 - np.sqrt(frac),
    }[shape]
    np.testing.assert_allclose(decay, 0.1 + 0.9 * expected, rtol=1e-5)


def test_cosine_and_constant():
    cos = values(make_schedule("cosine", lr=2.0, total_steps=50, warmup_steps=5), 50)
    assert cos[4] == pytest.approx(2.0) and np.all(np.diff(cos[5:]) < 0) and cos[-1] < 0.01
    const = values(make_schedule("constant", lr=2.0, total_steps=50, warmup_fraction=0.1), 50)
    np.testing.assert_allclose(const[5:], 2.0)
    assert const[0] == pytest.approx(0.4)


def test_phases_with_their_own_lr_segments():
    phases = parse_phases(
        [
            {"name": "warm", "steps": 10, "lr": {"start": 1.0, "end": 1.0, "warmup_steps": 5}},
            {"name": "stable", "steps": 20, "mixture": {"en": 1.0}},
            {
                "name": "anneal",
                "steps": 10,
                "mixture": {"de": 1.0},
                "lr": {"start": 1.0, "end": 0.0, "shape": "linear"},
            },
        ],
        40,
    )
    assert [p.start for p in phases] == [0, 10, 30] and phases[2].mixture == {"de": 1.0}
    fallback = make_schedule("constant", lr=0.5, total_steps=40, warmup_steps=0)
    lr = values(phase_schedule(phases, 0.5, fallback), 40)
    np.testing.assert_allclose(lr[:5], 0.5 * np.arange(1, 6) / 5, rtol=1e-6)
    np.testing.assert_allclose(lr[5:30], 0.5)
    np.testing.assert_allclose(lr[30], 0.5)
    np.testing.assert_allclose(lr[39], 0.0, atol=1e-7)
    assert [phase_index(phases, s) for s in (0, 9, 10, 29, 30, 39, 40)] == [0, 0, 1, 1, 2, 2, 2]


def test_bad_schedules_are_refused():
    with pytest.raises(ScheduleError, match="add up to 30 steps but train.steps is 40"):
        parse_phases([{"steps": 10}, {"steps": 20}], 40)
    with pytest.raises(ScheduleError, match="unknown keys"):
        parse_phases([{"steps": 40, "mix": {}}], 40)
    with pytest.raises(ScheduleError, match="unknown schedule"):
        make_schedule("linear", lr=1.0, total_steps=10)
    with pytest.raises(ScheduleError, match="longer than the run"):
        make_schedule("wsd", lr=1.0, total_steps=10, warmup_steps=20)
