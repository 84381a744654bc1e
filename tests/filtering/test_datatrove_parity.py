"""Keep/drop decisions (and reasons) agree with datatrove's filters, document by document.

Peer: datatrove's GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter and
FineWebQualityFilter with their default (FineWeb) thresholds, spaCy blank English tokenizer.
Skipped when datatrove/spaCy are not installed (they are in the test extra).
"""

import copy

import pytest

from eurollm_jax.filtering.bench import datatrove_reason, first_drops

pytestmark = pytest.mark.datatrove

dt_filters = pytest.importorskip("datatrove.pipeline.filters")
pytest.importorskip("spacy")
from datatrove.data import Document as DTDocument  # noqa: E402

from eurollm_jax.filtering import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    fineweb_heuristics,
)


def _dt(filters, docs):
    return first_drops(filters, [DTDocument(text=d.text, id=d.id) for d in docs], datatrove_reason)


def _ours(filters, docs):
    return first_drops(filters, [copy.deepcopy(d) for d in docs])


def _agreement(a, b):
    same_decision = sum((x is None) == (y is None) for x, y in zip(a, b)) / len(a)
    same_reason = sum(x == y for x, y in zip(a, b)) / len(a)
    return same_decision, same_reason


def test_recipe_chain_agrees(english_docs):
    ref = _dt([dt_filters.GopherRepetitionFilter(), dt_filters.GopherQualityFilter(),
               dt_filters.C4QualityFilter(filter_no_terminal_punct=False),
               dt_filters.FineWebQualityFilter()], english_docs)
    ours = _ours(fineweb_heuristics(), english_docs)
    decision, reason = _agreement(ref, ours)
    kept = sum(r is None for r in ref)
    assert 0.1 * len(ref) < kept < 0.9 * len(ref)  # the corpus exercises both outcomes
    assert decision >= 0.99, (decision, [(x, y) for x, y in zip(ref, ours) if x != y][:10])
    assert reason >= 0.99


@pytest.mark.parametrize("ours_cls,dt_name,kwargs", [
    (GopherQualityFilter, "GopherQualityFilter", {}),
    (GopherRepetitionFilter, "GopherRepetitionFilter", {}),
    (C4QualityFilter, "C4QualityFilter", {}),
    (C4QualityFilter, "C4QualityFilter", {"filter_no_terminal_punct": False}),
    (FineWebQualityFilter, "FineWebQualityFilter", {}),
])
def test_each_filter_agrees_alone(english_docs, ours_cls, dt_name, kwargs):
    ref = _dt([getattr(dt_filters, dt_name)(**kwargs)], english_docs)
    ours = _ours([ours_cls(**kwargs)], english_docs)
    decision, reason = _agreement(ref, ours)
    assert decision >= 0.99 and reason >= 0.99, (decision, reason)
    assert any(r is None for r in ref) and any(r is not None for r in ref)


def test_c4_rewrites_text_like_datatrove(english_docs):
    f_dt = dt_filters.C4QualityFilter(filter_no_terminal_punct=False)
    f = C4QualityFilter(filter_no_terminal_punct=False)
    for d in english_docs[:200]:
        dd = DTDocument(text=d.text, id=d.id)
        mine = copy.deepcopy(d)
        if f_dt.filter(dd) is True and f.filter(mine) is None:
            assert mine.text == dd.text
