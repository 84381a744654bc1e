"""Long-context SFT data by context synthesis (``python -m launch.synthesize
--config=configs/synthesis_context.py``).

(question, answer) seeds per task (``--config.job.seeds=qa.jsonl``, lines ``{"task":
"single_doc_qa", "question": "...", "answer": "..."}``) -> a ~2,000-word background context per
seed (parsed after "Context:") -> + the contexts of 9 other seeds of the task as distractors,
shuffled -> the task's template (``context.templates``, LongBench-style defaults for
single_doc_qa, multi_doc_qa and summarization) -> SFT records with loss on the answer only.
Train with long sequences (tens of thousands of tokens) and packing.
"""

from configs.synthesis_common import synthesis_config


def get_config():
    return synthesis_config("context")
