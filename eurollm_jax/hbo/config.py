"""The ``hbo`` section of an HBO job config (the trainer's sections plus this one).

A job config for ``eurollm_jax.hbo.run`` is a trainer job config (``configs/base.py``) with
one more section, ``hbo``; ``split_job_config`` separates the two. The same command runs
HBO, its ablations and the static baselines, chosen by ``hbo.mode`` and ``hbo.tau``:

- ``mode="hbo"``: global and local actors learn; ``"global"``: only the global actor
  (buckets stay uniform); ``"local"``: only the local actors (subsets stay at ``q_tau``);
  ``"static"``: nothing learns, the mixture is ``q_tau`` x uniform buckets (tau = 1:
  proportional, tau = 3, 5, 10: temperature sampling, tau = inf: uniform).
"""

from __future__ import annotations

import copy
import dataclasses
import math

from eurollm_jax.schema import Section, nearest_key

MODES = ("hbo", "global", "local", "static")


@dataclasses.dataclass(frozen=True)
class HBOSection(Section):
    mode: str = "hbo"  # hbo | global | local | static (see the module docstring)
    tau: float = 1.0  # global prior q_tau ∝ |D_i|^(1/tau); inf = uniform
    every: int = 200  # F: optimizer steps between reward computations / actor updates
    actor_steps: int = 200  # Adam steps per actor update
    actor_lr: float = 1e-4
    global_batches: int = 2  # gradient-norm batches per subset per reward
    reward_rows: int = 0  # rows of a reward batch (one example each); 0 = train.batch_size
    local_examples: int = 16  # fixed probe examples per bucket for the PPL-ratio reward
    seed: int = 0  # reward batches and probe examples
    plots: bool = True  # PNG plots of p_G, p_L and the rewards at the end of the run

    def check(self, path):
        self.require(path, self.mode in MODES, "mode",
                     f"{self.mode!r}{nearest_key(self.mode, MODES)}: choose one of "
                     f"{', '.join(MODES)}")
        self.require(path, self.tau > 0 and not math.isnan(self.tau), "tau",
                     "must be > 0 (inf: uniform)")
        self.require(path, self.every >= 1, "every", "must be >= 1")
        self.require(path, self.actor_steps >= 0, "actor_steps", "must be >= 0")
        self.require(path, self.actor_lr >= 0, "actor_lr", "must be >= 0")
        self.require(path, self.global_batches >= 1, "global_batches", "must be >= 1")
        self.require(path, self.reward_rows >= 0, "reward_rows", "must be >= 0")
        self.require(path, self.local_examples >= 1, "local_examples", "must be >= 1")

    @property
    def learns_global(self) -> bool:
        return self.mode in ("hbo", "global")

    @property
    def learns_local(self) -> bool:
        return self.mode in ("hbo", "local")


def split_job_config(config):
    """``(trainer job config, HBOSection)`` of an HBO job config (a ConfigDict or dict
    with an ``hbo`` section; without one, HBO's defaults)."""
    train_config = copy.deepcopy(config)
    if "hbo" in train_config:
        values = train_config["hbo"]
        del train_config["hbo"]
    else:
        values = None
    return train_config, HBOSection.from_mapping(values, "hbo")
