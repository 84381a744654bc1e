"""Filtering with the EuroFilter quality classifier after the heuristics.

Set the classifier directory (from ``--job=train_classifier``):
``--config.quality.model_dir=clf/``; documents whose predicted grade is below
``quality.threshold`` (3 of 5, FineWeb-Edu's choice) are dropped as
``quality_classifier:below_threshold``; the grade is stored in ``metadata.quality_score``.
The ``quality`` section is defined in ``eurollm_jax/filtering/config.py`` (``QualitySection``).
"""

from configs.filter_default import filter_config


def get_config():
    return filter_config(quality={"enabled": True})
