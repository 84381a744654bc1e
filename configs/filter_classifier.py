"""Train the EuroFilter quality classifier on annotations (``--job=train_classifier``).

Input: annotations.jsonl from ``--job=annotate``; a random ``test_fraction`` is held out and
the binary head's macro-F1 / weighted-F1 (and the regression MAE) are written to
OUTPUT/metrics.json next to the classifier.
"""

import ml_collections

from configs.filter_default import filter_config


def get_config():
    cfg = filter_config()
    cfg.classifier = ml_collections.ConfigDict({
        "steps": 300, "batch_size": 32, "learning_rate": 2e-3, "max_tokens": 128,
        "d_model": 64, "num_layers": 1, "positive_threshold": 3.0, "test_fraction": 0.2,
        "seed": 0,
    }, type_safe=False)
    return cfg
