"""Filtering job: the FineWeb-style recipe for the 24 EU languages (``python -m launch.filter``).

The sections, their fields, defaults and checks are defined once, as typed dataclasses, in
``eurollm_jax/filtering/config.py`` (``FilterConfig``; each field is commented there): the
reader's ``input`` options and limits, ``output`` format, ``language_id`` (lid.176 lite, with
lingua + py3langid on short, unsure or confusable texts; threshold 0.65; docs/language_id.md),
``url_blocklist``, the four ``heuristics`` filters (``heuristics.overrides``
changes a step's thresholds, ``heuristics.per_language`` a language's), ``pii`` redaction, the
EuroFilter classifier (``quality``, off here; see filter_eurofilter.py), exact + MinHash
``dedup`` (5-grams, 14 bands x 8 rows) and the local ``runner``. This file only turns those
defaults into a ConfigDict, the command-line surface. Override anything, e.g.
``--config.dedup.bands=20 --config.dedup.rows=5 --config.language_id.threshold=0.5``;
``launch.filter`` validates the result once (errors name the field; an unknown key names the
nearest valid one).
"""

import dataclasses
import types
import typing

import ml_collections
from ml_collections import config_dict

from eurollm_jax.filtering.config import FilterConfig
from eurollm_jax.schema import Section

_OVERRIDABLE = (bool, int, float, str)


def section_config(section: Section) -> ml_collections.ConfigDict:
    """``section``'s values as a ConfigDict. A None value of an ``X | None`` field becomes a
    placeholder of type X, so that ``--config.dedup.verify_threshold=0.5`` can set it
    (ml_collections cannot override a plain None)."""
    hints = typing.get_type_hints(type(section))
    values = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if isinstance(value, Section):
            values[f.name] = section_config(value)
            continue
        args = typing.get_args(hints[f.name])
        if value is None and typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType):
            scalar = [a for a in args if a in _OVERRIDABLE]
            value = config_dict.placeholder(scalar[0]) if scalar else None
        values[f.name] = value
    return ml_collections.ConfigDict(values, type_safe=False)


def filter_config(**section_overrides) -> ml_collections.ConfigDict:
    """The default run's ConfigDict; ``section_overrides`` (``quality={"enabled": True}``)
    replace single fields of sections."""
    config = section_config(FilterConfig())
    for section, values in section_overrides.items():
        config[section].update(values)
    return config


def get_config():
    return filter_config()
