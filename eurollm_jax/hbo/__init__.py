"""HBO: Hierarchical Balancing Optimization of data mixtures, driven by the trainer.

A global actor (one logit per subset, initialised to ``log q_tau``) and local actors (one
logit per difficulty bucket of a subset, initialised uniform) set the training mixture
``p_G(i) p_L(j|i)`` of the live data iterator, and learn it from rewards computed purely on
the model's current params every F steps: the full-gradient norm of each subset's LM loss
(global) and the PPL ratio current/initial of each bucket's responses (local). See
docs/hbo.md.

Public surface:
- ``HBOHook``: the trainer hook (``Trainer(...).add_hook(HBOHook(settings))``);
- ``HBOSection`` / ``split_job_config``: the ``hbo`` config section of an HBO job;
- ``run`` / ``build``: the trainer with the hook, from an HBO job config
  (``python -m eurollm_jax.hbo --config=configs/hbo.py --workdir=...``);
- ``Actor``, ``temperature_prior``: the actors and the q_tau prior;
- ``ifd_scores``, ``ppl_scores``, ``length_scores``, ``write_bucketed_sft``: difficulty and
  the bucketed SFT file (sources ``<subset>/b<j>``);
- ``BucketLayout``, ``bucket_source``, ``difficulty_buckets``: the bucket naming;
- ``plot_run``: PNG plots of p_G, p_L and the rewards from a workdir's metrics.jsonl;
- ``eurollm_jax.hbo.experiment.run_experiment``: the tiny 8-language experiment
  (``python -m eurollm_jax.hbo.experiment --out=DIR``).
"""

from eurollm_jax.hbo.actors import Actor, temperature_prior
from eurollm_jax.hbo.buckets import BucketLayout, bucket_source, difficulty_buckets, parse_source
from eurollm_jax.hbo.config import MODES, HBOSection, split_job_config
from eurollm_jax.hbo.difficulty import (
    SCORERS,
    ScoreCache,
    ifd_scores,
    length_scores,
    ppl_scores,
    write_bucketed_sft,
)
from eurollm_jax.hbo.hook import HBOError, HBOHook, pipeline_weights
from eurollm_jax.hbo.plots import plot_run
from eurollm_jax.hbo.rewards import RewardModel
from eurollm_jax.hbo.run import build, run

__all__ = [
    "Actor",
    "temperature_prior",
    "BucketLayout",
    "bucket_source",
    "difficulty_buckets",
    "parse_source",
    "MODES",
    "HBOSection",
    "split_job_config",
    "SCORERS",
    "ScoreCache",
    "ifd_scores",
    "length_scores",
    "ppl_scores",
    "write_bucketed_sft",
    "HBOError",
    "HBOHook",
    "pipeline_weights",
    "plot_run",
    "RewardModel",
    "build",
    "run",
]
