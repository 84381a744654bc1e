"""Synthesis jobs (layer above filtering): LLM-generated SFT data that the trainer reads.

- ``runner``: the resumable generation runner (``run_local``: inline or multi-process; work
  units with atomic files, the LLM client's persistent cache, progress with ETA) and the output
  writer (``sft/``, ``audit/``, ``dropped.jsonl``, ``report.{json,md}``);
  ``beam_runner.run_beam``: the same job on Apache Beam, same files;
- ``steps``: ``Step``, ``LLMStep``, counters, audit, parsers (``after_marker``,
  ``parse_judge_score``), language check, MinHash near-dedup, best-per-group;
- ``pipelines``: EuroBlocks, XL-Instruct, context synthesis;
- ``config``: the typed job schema (``SynthesisConfig``); ``bench``: the client's requests/s.

Every LLM call goes through ``eurollm_jax.llm.LLMClient``; outputs are SFT records of
``eurollm_jax.data.sft`` (``--config.data.source=sft --config.data.sft_file=OUT/sft``).
"""

from eurollm_jax.synthesis.config import SynthesisConfig
from eurollm_jax.synthesis.pipelines import PIPELINES, SeedError, get_pipeline
from eurollm_jax.synthesis.runner import make_job, read_sft_output, run_local
from eurollm_jax.synthesis.steps import (
    Counters,
    LLMStep,
    Step,
    StepContext,
    after_marker,
    parse_judge_score,
)

__all__ = [
    "Counters",
    "LLMStep",
    "PIPELINES",
    "SeedError",
    "Step",
    "StepContext",
    "SynthesisConfig",
    "after_marker",
    "get_pipeline",
    "make_job",
    "parse_judge_score",
    "read_sft_output",
    "run_local",
]
