"""Evaluation suite: EuroGEST gender bias, the European benchmark set through lm-eval, machine
translation, XL-AlpacaEval, and the one results registry they all write to.

Modules (each imported on use; lm-eval, sacrebleu and the LLM client are optional extras):
- ``registry``: the record schema, ``weights_fingerprint``, ``report`` (Markdown table).
- ``progress``: resume store (finished (task, language) pairs) and progress with ETA.
- ``common``: the checkpoint being evaluated (``load_eval_model``), the per-language loop.
- ``eurogest``: EuroGEST scoring (``run_eurogest``).
- ``lm_eval_tasks``: the European benchmark set on local files (``run_lm_eval``).
- ``mt``: FLORES-style translation, chrF / BLEU with sacrebleu, optional COMET (``run_mt``).
- ``xl_alpacaeval``: pairwise LLM-judge win rate with position swap (``run_xl_alpacaeval``).
- ``bench``: ``python -m launch.bench eurogest``.
Entry point: ``python -m launch.evaluate eurogest|lm_eval|mt|xl_alpacaeval|report``.
"""

from eurollm_jax.evaluation.registry import read_records, report, weights_fingerprint

__all__ = ["read_records", "report", "weights_fingerprint"]
