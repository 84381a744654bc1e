"""Filtering job: the FineWeb-style recipe for the 24 EU languages (``python -m launch.filter``).

Sections mirror ``eurollm_jax.filtering.pipeline.default_config()``: input limits, output
format, language ID (lid.176 lite, threshold 0.65), URL blocklist, the four heuristic filters
(``heuristics.overrides`` changes a step's thresholds, ``heuristics.per_language`` a language's),
PII redaction, the EuroFilter classifier (off here; see filter_eurofilter.py), exact + MinHash
dedup (5-grams, 14 bands x 8 rows) and the local runner. Override on the command line, e.g.
``--config.dedup.bands=20 --config.dedup.rows=5 --config.language_id.threshold=0.5``.
"""

import ml_collections

from eurollm_jax.filtering.pipeline import default_config


def filter_config(**section_overrides) -> ml_collections.ConfigDict:
    d = default_config()
    for section, values in section_overrides.items():
        d.setdefault(section, {}).update(values)
    return ml_collections.ConfigDict(d, type_safe=False)


def get_config():
    return filter_config()
