"""Benchmark: documents/s per core of the heuristic chain, ours vs datatrove, same documents.

``python -m launch.bench filter [--docs=2000] [--repeats=5] [--seed=0]``

Both chains run in this one process, one core, alternating, on the same documents from
``sample_corpus.english_corpus`` (web-like English pages; about a quarter survive): the
FineWeb recipe order (Gopher repetition -> Gopher quality -> C4 with
``filter_no_terminal_punct=False`` -> FineWeb quality), early exit at the first drop.
Our tokenizer's chunk cache and datatrove's per-text tokenizer cache both start cold in every
repeat. Prints the medians, the ratio, and the fraction of documents on which the two agree.
Needs ``datatrove[processing]`` and ``spacy`` (the test extra) for the peer.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time


def first_drops(steps, docs, reason=lambda r: r) -> list:
    """Per document, the reason of the first step that drops it (None: kept), stopping there
    like the recipe. ``reason`` maps a step's ``filter`` answer to None (keep) or a reason."""
    out = []
    for d in docs:
        res = None
        for s in steps:
            res = reason(s.filter(d))
            if res is not None:
                break
        out.append(res)
    return out


def datatrove_reason(answer):
    """A datatrove filter's answer (True, False or (False, reason)) as None or a reason."""
    if answer is True:
        return None
    return answer[1] if isinstance(answer, tuple) else "dropped"


def _ours(docs):
    from eurollm_jax.filtering.heuristics import fineweb_heuristics
    from eurollm_jax.filtering.text import get_tokenizer

    get_tokenizer.cache_clear()
    steps = fineweb_heuristics()
    t0 = time.perf_counter()
    out = first_drops(steps, docs)
    return time.perf_counter() - t0, out


def _datatrove(docs):
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.utils import text as dt_text

    dt_text.split_into_parts.cache_clear()
    steps = [GopherRepetitionFilter(), GopherQualityFilter(),
             C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter()]
    t0 = time.perf_counter()
    out = first_drops(steps, docs, datatrove_reason)
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launch.bench filter")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args((argv or [])[1:])

    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from eurollm_jax.filtering.sample_corpus import english_corpus

    try:
        from datatrove.data import Document as DTDocument
    except ImportError:
        print("datatrove is not installed: pip install 'datatrove[processing]' spacy", flush=True)
        DTDocument = None

    docs = english_corpus(args.docs, seed=args.seed)
    chars = sum(len(d.text) for d in docs)
    ours_t, dt_t = [], []
    ours_out = dt_out = None
    _ours(copy.deepcopy(docs[:50]))  # imports, tables
    if DTDocument is not None:
        _datatrove([DTDocument(text=d.text, id=d.id) for d in docs[:50]])  # loads spaCy
    for _ in range(args.repeats):
        t, ours_out = _ours(copy.deepcopy(docs))
        ours_t.append(t)
        if DTDocument is not None:
            t, dt_out = _datatrove([DTDocument(text=d.text, id=d.id) for d in docs])
            dt_t.append(t)
    ours_med = statistics.median(ours_t)
    result = {"benchmark": "filter_heuristics", "docs": len(docs), "chars": chars,
              "repeats": args.repeats, "ours_s_median": round(ours_med, 4),
              "ours_docs_per_s_per_core": round(len(docs) / ours_med, 1),
              "ours_kept": sum(o is None for o in ours_out)}
    if dt_t:
        dt_med = statistics.median(dt_t)
        agree = sum((a is None) == (b is None) for a, b in zip(ours_out, dt_out)) / len(docs)
        result.update({"datatrove_s_median": round(dt_med, 4),
                       "datatrove_docs_per_s_per_core": round(len(docs) / dt_med, 1),
                       "speedup_vs_datatrove": round(dt_med / ours_med, 2),
                       "keep_drop_agreement": round(agree, 4)})
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
