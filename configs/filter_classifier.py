"""Train the EuroFilter quality classifier on annotations (``--job=train_classifier``).

Input: annotations.jsonl from ``--job=annotate``; a random ``test_fraction`` is held out and
the binary head's macro-F1 / weighted-F1 (and the regression MAE) are written to
OUTPUT/metrics.json next to the classifier. The ``classifier`` section (the architecture and
the training settings) is defined in ``eurollm_jax/filtering/config.py``
(``ClassifierTrainSection``).
"""

from configs.filter_default import filter_config, section_config
from eurollm_jax.filtering.config import ClassifierTrainSection


def get_config():
    cfg = filter_config()
    cfg.classifier = section_config(ClassifierTrainSection())
    return cfg
