"""Local data for the lm-eval task YAMLs that ``eurollm_jax.evaluation.lm_eval_tasks``
generates (their ``custom_dataset: !function evals.lm_eval_data.load_splits``).

Each split is its own file (JSON lines, JSON, CSV or Parquet, in the published format of the
dataset the built-in task downloads) and is read on its own, so columns whose type differs
between splits (MGSM's ``answer`` is text in train and null in test) keep each split's type.
Nothing is downloaded.
"""

from __future__ import annotations

import os

_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_splits(data_files=None, **_metadata):
    """``{split: path}`` -> ``datasets.DatasetDict`` (lm-eval passes its metadata too)."""
    import datasets

    if not data_files:
        raise ValueError("lm-eval local task: dataset_kwargs.data_files is empty")
    out = {}
    for split, path in data_files.items():
        ext = os.path.splitext(path)[1]
        if ext not in _BUILDERS:
            raise ValueError(f"{path}: unsupported file type {ext!r}; use {sorted(_BUILDERS)}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"lm-eval local task: {path} does not exist")
        out[split] = datasets.load_dataset(_BUILDERS[ext], data_files={split: path}, split=split)
    return datasets.DatasetDict(out)
