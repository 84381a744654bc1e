"""Multilingual process reward models: step-tagged data, training, scoring, best-of-N.

The PRM is the causal LM itself plus a scoring rule at step tags: it trains with the
trainer's SFT path (loss only at the step tags) and loads the project's checkpoints.

Public surface:
- data (``prm.data``): ``load_step_solutions`` (Math-Shepherd, PRM800K, plain steps; per-
  language counts, malformed records counted by reason), ``StepSolution``, ``LoadReport``;
- rendering (``prm.render``): ``StepFormat``, ``render_solution`` (tag positions),
  ``training_records`` (pre-rendered SFT records, the label right after each tag);
- training (``prm.train``): ``PRMSection`` (the job config's ``prm`` section),
  ``train_prm`` / ``make_trainer``; loss ``two_way`` (CE over {+, -}) or ``full``;
- scoring (``prm.scoring``): ``PRMScorer`` (p_k at each tag; min / last / mean);
- answers (``prm.answers``): per-language number parsing, ``extract_answer``,
  ``extract_boxed``, ``math_answers_match``;
- benchmarks (``prm.benchmarks``): ``read_mgsm``, ``read_math500``, ``EvalQuestion``;
- best-of-N (``prm.best_of_n``): ``sample_solutions``, ``score_samples``, ``select``,
  ``accuracy_table``, ``write_report``;
- the synthetic experiment (``prm.synthetic.run_experiment``); the benchmark
  ``python -m launch.bench prm`` (``prm.bench``). Entry point: ``python -m launch.prm``.
"""

from eurollm_jax.prm.answers import (
    answers_match,
    extract_answer,
    extract_boxed,
    find_numbers,
    math_answers_match,
    parse_number,
)
from eurollm_jax.prm.benchmarks import (
    BenchmarkFormatError,
    EvalQuestion,
    first_per_language,
    read_math500,
    read_mgsm,
)
from eurollm_jax.prm.best_of_n import (
    METHODS,
    Sample,
    accuracy_table,
    markdown_table,
    sample_solutions,
    score_samples,
    select,
    split_steps,
    write_report,
)
from eurollm_jax.prm.data import LoadReport, StepSolution, load_step_solutions, parse_record
from eurollm_jax.prm.render import (
    RenderedSolution,
    RenderError,
    StepFormat,
    label_ids,
    render_solution,
    training_records,
)
from eurollm_jax.prm.scoring import AGGREGATIONS, PRMScorer, aggregate
from eurollm_jax.prm.train import PRMSection, make_trainer, split_config, train_prm

__all__ = [
    "answers_match", "extract_answer", "extract_boxed", "find_numbers", "math_answers_match",
    "parse_number", "BenchmarkFormatError", "first_per_language", "EvalQuestion", "read_math500", "read_mgsm",
    "METHODS", "Sample", "accuracy_table", "markdown_table", "sample_solutions",
    "score_samples", "select", "split_steps", "write_report", "LoadReport", "StepSolution",
    "load_step_solutions", "parse_record", "RenderedSolution", "RenderError", "StepFormat",
    "label_ids", "render_solution", "training_records", "AGGREGATIONS", "PRMScorer",
    "aggregate", "PRMSection", "make_trainer", "split_config", "train_prm",
]
