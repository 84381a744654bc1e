"""Trainer hooks: order, metrics they add, mixture changes and state saved with checkpoints."""

import os

from eurollm_jax.fileio import read_jsonl
from eurollm_jax.train import Hook, Trainer
from tests.train.helpers import override, small_config


class SwingingMixture(Hook):
    """Every 2 steps move the mixture to the other language; counts its calls (its state)."""

    name, every = "swing", 2

    def __init__(self):
        self.calls = 0
        self.seen_eval = []

    def __call__(self, info):
        self.calls += 1
        self.seen_eval.append("eval_loss" in info.metrics)
        lang = ("en", "de")[self.calls % 2]
        info.iterator.set_mixture_weights({lang: 1.0})
        info.metrics["swing/calls"] = float(self.calls)

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = int(state["calls"])


def _config(**train):
    config = small_config(mesh=(2, 2, 2), steps=6, **train)
    return override(config, **{"data.source": "text", "data.languages": ("en", "de"),
                               "eval.every": 2, "checkpoint.every": 0})


def _records(workdir):
    return {r["step"]: r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))}


def test_hook_state_and_mixture_resume_exactly(tmp_path):
    straight_hook = SwingingMixture()
    straight = Trainer(_config(), str(tmp_path / "straight"), hooks=[straight_hook]).run()
    assert straight_hook.calls == 3 and straight_hook.seen_eval == [True, True, True]

    first_hook = SwingingMixture()
    first = Trainer(_config(stop_after=3), str(tmp_path / "resumed"), hooks=[first_hook]).run()
    assert first.step == 3 and first_hook.calls == 1
    resumed_hook = SwingingMixture()
    Trainer(_config(), str(tmp_path / "resumed"), hooks=[resumed_hook]).run()
    assert resumed_hook.calls == 3  # 1 restored from the step-3 checkpoint + 2 more

    a, b = _records(straight.workdir), _records(str(tmp_path / "resumed"))
    assert [a[s]["loss"] for s in range(1, 7)] == [b[s]["loss"] for s in range(1, 7)]
    # the hook's own metric is logged with the step's record
    assert [a[s].get("swing/calls") for s in (2, 4, 6)] == [1.0, 2.0, 3.0]
    assert b[6]["swing/calls"] == 3.0


def test_function_hooks_see_every_step_in_order(tmp_path):
    seen = []
    trainer = Trainer(small_config(mesh=(2, 2, 2), steps=3), str(tmp_path / "run"))
    trainer.add_hook(lambda info: seen.append(("a", info.step, info.final)), every=1)
    trainer.add_hook(lambda info: seen.append(("b", info.step, info.final)), every=2)
    trainer.run()
    assert seen == [("a", 1, False), ("a", 2, False), ("b", 2, False), ("a", 3, True)]


def test_profile_hook_writes_a_trace_of_the_chosen_steps(tmp_path):
    config = small_config(mesh=(2, 2, 2), steps=3, profile_start=0, profile_steps=2)
    Trainer(config, str(tmp_path / "run")).run()
    traces = [f for d, _, fs in os.walk(tmp_path / "run" / "profile") for f in fs]
    assert any(f.endswith((".xplane.pb", ".trace.json.gz")) for f in traces), traces
