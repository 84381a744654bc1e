"""``HBOHook``: Hierarchical Balancing Optimization as a trainer hook.

Added to a ``train.Trainer`` whose data sources are HBO buckets (``hbo.buckets``:
``"<subset>/b<j>"``), the hook

1. at the start of a fresh run, sets the global actor to ``log q_tau`` (``q`` ∝ examples
   per subset) and every local actor to uniform, picks ``hbo.local_examples`` fixed probe
   examples per bucket and records their mean NLL under the initial params (the reference
   of the PPL-ratio reward), and pushes the mixture into the live data iterator;
2. every ``hbo.every`` steps computes the rewards on the current params, purely
   (``hbo.rewards``): ``R_G(i)``, the mean full-gradient norm over ``hbo.global_batches``
   batches of subset ``i`` (examples drawn uniformly, with replacement, by a generator
   seeded with (seed, step, subset)), and ``R_L(i, j)``, the mean over the probes of bucket
   ``(i, j)`` of ``PPL_now / PPL_init`` on the training targets (the response tokens of SFT
   examples), normalised by its mean over the buckets of ``i``; then updates the actors
   (``hbo.actors``) and pushes the new mixture;
3. logs ``hbo/p_G/<subset>`` and ``hbo/p_L/<subset>/b<j>`` with every step's record and
   ``hbo/R_G/...``, ``hbo/R_L/...``, ``hbo/reward_time_s`` with the update steps
   (metrics.jsonl, TensorBoard), and writes PNG plots at the end (``hbo.plots``).

The mixture pushed is ``p_G(i) p_L(j|i)`` over examples; the pipeline mixes by tokens
(``PipelineConfig.mixture_unit``), so each bucket's weight is multiplied by its mean tokens
per example, which makes the example frequencies ``p_G x p_L``. (The pipeline's sampler is
deterministic and low-discrepancy and visits a bucket's examples in a fresh permutation each
epoch: the frequencies of the paper's draws with replacement, with less variance.)

State saved in every checkpoint (``state_dict``): actor logits and Adam moments, the probe
indices, their reference NLLs and the last rewards; the data iterator saves the mixture
itself. A resumed run therefore continues exactly.
"""

from __future__ import annotations

import logging
import time

import jax
import numpy as np

from eurollm_jax.train import Hook
from eurollm_jax.train.data import documents

from eurollm_jax.hbo.actors import Actor, temperature_prior
from eurollm_jax.hbo.buckets import BucketLayout, SourceExamples, example_targets
from eurollm_jax.hbo.config import HBOSection
from eurollm_jax.hbo.rewards import RewardModel, normalise_over_buckets, ppl_ratios

log = logging.getLogger(__name__)
STATE_VERSION = 1


def pipeline_weights(example_mixture: dict[str, float], mean_tokens: dict[str, float],
                     unit: str = "tokens") -> dict[str, float]:
    """Mixture weights for the pipeline's sampler that give the example frequencies
    ``example_mixture``: per source ``p * mean tokens per example`` when it mixes by tokens
    (``unit="tokens"``), ``p`` itself when it mixes by examples; normalised."""
    if unit not in ("tokens", "examples"):
        raise ValueError(f"mixture unit must be 'tokens' or 'examples', got {unit!r}")
    mix = dict(example_mixture)
    if unit == "tokens":
        mix = {n: w * float(mean_tokens[n]) for n, w in mix.items()}
    total = sum(mix.values())
    return {n: w / total for n, w in mix.items()}


class HBOError(ValueError):
    """A run HBO cannot balance (its sources, its state or its settings)."""


class HBOHook(Hook):
    """See the module docstring. ``settings``: an ``HBOSection``."""

    name = "hbo"
    every = 1  # called after every step: logs the mixture; updates every ``settings.every``

    def __init__(self, settings: HBOSection | None = None):
        self.settings = settings or HBOSection()
        self.global_actor: Actor | None = None
        self.local_actors: dict[str, Actor] = {}
        self.probes: dict[str, list[int]] = {}
        self.reference: dict[str, list[float]] = {}
        self.last_rewards: dict = {}
        self.updates = 0
        self._saved = None
        self.trainer = None
        self.reward_model: RewardModel | None = None
        self.reward_seconds = 0.0

    # ------------------------------------------------------------------ set-up
    def on_start(self, trainer, step: int) -> None:
        s = self.settings
        self.trainer = trainer
        it = trainer.iterator
        try:
            self.layout = BucketLayout(it.source_names)
        except ValueError as e:
            raise HBOError(f"HBO: {e}") from e
        settings = trainer.settings
        if settings.data.source == "pipeline":
            raise HBOError(
                "HBO reads the examples of every bucket in memory (data.source=sft or text); "
                "data.source=pipeline (token shards) is not supported yet")
        _, named = documents(settings, "train")
        self.examples = SourceExamples(named)
        missing = sorted(set(self.layout.all_sources) - set(self.examples.examples))
        if missing:
            raise HBOError(f"HBO: sources {missing} have no training examples")
        self.sizes = np.array([sum(self.examples.count(b) for b in self.layout.buckets(sub))
                               for sub in self.layout.subsets], np.float64)
        unit = getattr(getattr(it, "iterators", [it])[0], "config", None)
        self.unit = getattr(unit, "mixture_unit", "tokens")
        rows = s.reward_rows or settings.train.batch_size
        self.reward_model = RewardModel(trainer.job, rows)
        self.seq_len = settings.train.seq_len
        if self._saved is not None:
            self._restore(self._saved)
        else:
            if step != 0:
                raise HBOError(
                    f"HBO joins this run at step {step} but its checkpoint holds no HBO state: "
                    "the PPL-ratio reward needs the initial params' losses. Start HBO in a "
                    "fresh workdir (train.init_params for a fine-tune)")
            self._init_actors()
            self._init_probes(trainer.state["params"])
            self._push(it)
        if s.learns_global or s.learns_local:
            log_every = settings.train.log_every
            if log_every > 0 and s.every % log_every:
                log.warning("hbo.every=%d is not a multiple of train.log_every=%d: some reward "
                            "records are not logged", s.every, log_every)

    def _init_actors(self) -> None:
        q = temperature_prior(self.sizes, self.settings.tau)
        self.global_actor = Actor.from_probs(self.layout.subsets, q)
        self.local_actors = {sub: Actor(self.layout.buckets(sub)) for sub in self.layout.subsets}

    def _init_probes(self, params) -> None:
        rng = np.random.default_rng([self.settings.seed, 1])
        self.probes = {}
        for name in self.layout.all_sources:
            usable = [i for i in range(self.examples.count(name))
                      if example_targets(*self.examples.get(name, i), self.seq_len) > 0]
            if not usable:
                raise HBOError(f"HBO: bucket {name!r} has no example with a training target "
                               f"within train.seq_len={self.seq_len}")
            k = min(self.settings.local_examples, len(usable))
            self.probes[name] = sorted(int(i) for i in rng.choice(usable, k, replace=False))
        self.reference = {}
        if self.settings.learns_local:
            for name, idx in self.probes.items():
                nll = self.reward_model.mean_nll(params, self.probe_examples(name))
                self.reference[name] = nll.tolist()

    def probe_examples(self, name: str) -> list:
        return [self.examples.get(name, i) for i in self.probes[name]]

    # ------------------------------------------------------------------ mixture
    @property
    def p_global(self) -> np.ndarray:
        return self.global_actor.probs

    def example_mixture(self) -> dict[str, float]:
        """``{bucket source: p_G(i) p_L(j|i)}`` (sums to 1)."""
        out = {}
        for p_i, sub in zip(self.p_global, self.layout.subsets):
            for p_j, name in zip(self.local_actors[sub].probs, self.layout.buckets(sub)):
                out[name] = float(p_i * p_j)
        return out

    def pipeline_weights(self) -> dict[str, float]:
        """The iterator weights that give example frequencies ``example_mixture()``."""
        mean_tokens = {n: self.examples.mean_tokens(n) for n in self.layout.all_sources}
        return pipeline_weights(self.example_mixture(), mean_tokens, self.unit)

    def _push(self, iterator) -> None:
        weights = self.pipeline_weights()
        full = {n: weights.get(n, 0.0) for n in iterator.source_names}
        iterator.set_mixture_weights(full)

    # ------------------------------------------------------------------ rewards
    def global_batches(self, subset_index: int, step: int) -> list[list]:
        """The examples of subset ``i``'s reward batches at ``step``: ``global_batches``
        batches of ``reward_rows`` examples drawn uniformly from the subset with replacement
        (a generator seeded by (seed, step, i): the same on every process and on resume)."""
        names = self.layout.buckets(self.layout.subsets[subset_index])
        ends = np.cumsum([self.examples.count(n) for n in names])
        starts = ends - np.array([self.examples.count(n) for n in names])
        rng = np.random.default_rng([self.settings.seed, 2, int(step), int(subset_index)])
        batches = []
        for _ in range(self.settings.global_batches):
            flat = rng.integers(0, ends[-1], size=self.reward_model.rows)
            where = np.searchsorted(ends, flat, side="right")
            batches.append([self.examples.get(names[b], int(f - starts[b]))
                            for b, f in zip(where, flat)])
        return batches

    def global_rewards(self, params, step: int) -> np.ndarray:
        """``R_G(i)``: mean gradient norm over ``global_batches`` batches of subset ``i``."""
        return np.array([
            float(np.mean([self.reward_model.grad_norm(params, b)
                           for b in self.global_batches(i, step)]))
            for i in range(len(self.layout.subsets))])

    def local_rewards(self, params) -> dict[str, np.ndarray]:
        """``{subset: R_L(i, .)}``: mean PPL ratio per bucket, normalised over buckets."""
        out = {}
        for sub in self.layout.subsets:
            raw = []
            for name in self.layout.buckets(sub):
                now = self.reward_model.mean_nll(params, self.probe_examples(name))
                raw.append(float(ppl_ratios(now, self.reference[name]).mean()))
            out[sub] = normalise_over_buckets(np.asarray(raw))
        return out

    def compute_rewards(self, params, step: int) -> dict:
        """``{"global": R_G or None, "local": {subset: R_L} or None}`` (pure)."""
        s = self.settings
        return {
            "global": self.global_rewards(params, step) if s.learns_global else None,
            "local": self.local_rewards(params) if s.learns_local else None,
        }

    # ------------------------------------------------------------------ the hook
    def __call__(self, info) -> None:
        s = self.settings
        if (s.learns_global or s.learns_local) and info.step % s.every == 0:
            start = time.perf_counter()
            rewards = self.compute_rewards(info.state["params"], info.step)
            before = self._logits()
            if rewards["global"] is not None:
                self.global_actor.update(rewards["global"], steps=s.actor_steps, lr=s.actor_lr)
            if rewards["local"] is not None:
                for sub, r in rewards["local"].items():
                    self.local_actors[sub].update(r, steps=s.actor_steps, lr=s.actor_lr)
            self.updates += 1
            if not all(np.array_equal(a, b) for a, b in zip(before, self._logits())):
                self._push(info.iterator)
            seconds = time.perf_counter() - start
            self.reward_seconds += seconds
            self.last_rewards = {
                "step": info.step,
                "global": None if rewards["global"] is None else rewards["global"].tolist(),
                "local": None if rewards["local"] is None
                else {k: v.tolist() for k, v in rewards["local"].items()},
            }
            info.metrics.update(self._reward_metrics())
            info.metrics["hbo/reward_time_s"] = seconds
        info.metrics.update(self.mixture_metrics())

    def _logits(self) -> list[np.ndarray]:
        return [self.global_actor.logits.copy()] + [
            self.local_actors[s].logits.copy() for s in self.layout.subsets]

    def mixture_metrics(self) -> dict[str, float]:
        out = {f"hbo/p_G/{sub}": float(p) for sub, p in zip(self.layout.subsets, self.p_global)}
        for sub in self.layout.subsets:
            for j, p in enumerate(self.local_actors[sub].probs):
                out[f"hbo/p_L/{sub}/b{j}"] = float(p)
        return out

    def _reward_metrics(self) -> dict[str, float]:
        out = {}
        r = self.last_rewards
        if r.get("global") is not None:
            out.update({f"hbo/R_G/{sub}": v for sub, v in zip(self.layout.subsets, r["global"])})
        if r.get("local") is not None:
            for sub, values in r["local"].items():
                out.update({f"hbo/R_L/{sub}/b{j}": v for j, v in enumerate(values)})
        return out

    def on_end(self, info) -> None:
        if self.settings.plots and jax.process_index() == 0:
            from eurollm_jax.hbo.plots import plot_run

            try:
                plot_run(info.trainer.workdir)
            except ImportError as e:
                log.warning("HBO plots skipped: %s", e)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "settings": self.settings.to_dict(),
            "global": self.global_actor.state_dict(),
            "local": {sub: a.state_dict() for sub, a in self.local_actors.items()},
            "probes": self.probes,
            "reference": self.reference,
            "last_rewards": self.last_rewards,
            "updates": self.updates,
        }

    def load_state_dict(self, state) -> None:
        self._saved = state  # applied in on_start, once the sources are known

    def _restore(self, state) -> None:
        if state.get("version") != STATE_VERSION:
            raise HBOError(f"HBO state version {state.get('version')} is not {STATE_VERSION}")
        saved_mode = state["settings"]["mode"]
        if saved_mode != self.settings.mode:
            raise HBOError(f"this run's checkpoint was made with hbo.mode={saved_mode!r}; "
                           f"resume it with the same mode (got {self.settings.mode!r})")
        self._init_actors()
        try:
            self.global_actor.load_state_dict(state["global"])
            for sub, a in self.local_actors.items():
                a.load_state_dict(state["local"][sub])
        except (KeyError, ValueError) as e:
            raise HBOError(f"HBO state does not match this run's subsets/buckets: {e}") from e
        self.probes = {k: [int(i) for i in v] for k, v in state["probes"].items()}
        self.reference = {k: [float(x) for x in v] for k, v in state["reference"].items()}
        self.last_rewards = state.get("last_rewards", {})
        self.updates = int(state.get("updates", 0))
