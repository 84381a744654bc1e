"""Benchmark: documents/s per core of the filtering chain, ours vs datatrove, same documents.

``python -m launch.bench filter [--docs=2000] [--repeats=5] [--seed=0] [--chain=full]``

Both chains run in this one process, one core, alternating, on the same documents from
``sample_corpus.english_corpus`` (web-like English pages; about a quarter survive), with the
same steps in the FineWeb recipe order, early exit at the first drop:

- ``--chain=full`` (default): language ID -> Gopher repetition -> Gopher quality -> C4 (with
  ``filter_no_terminal_punct=False``) -> FineWeb quality. Ours: ``LanguageID()`` as the filter
  job configures it by default (lid.176 lite, lingua + py3langid second pass where it is unsure
  or the text is short, 24 EU languages kept); datatrove's: ``LanguageFilter`` (its ``ft176``
  backend, the 24 EU languages, threshold 0.65) given the same local ``lid.176.ftz`` file (its
  own loader would download ``lid.176.bin``; nothing downloads here);
- ``--chain=heuristics``: the four heuristic filters only, on both sides.

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

CHAINS = ("full", "heuristics")


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


def our_steps(chain: str = "full", language_id=None) -> list:
    """Our chain: ``language_id`` (default ``LanguageID()``, loaded) then the heuristics."""
    from eurollm_jax.filtering.heuristics import fineweb_heuristics
    from eurollm_jax.filtering.langid import LanguageID

    steps = fineweb_heuristics()
    if chain == "full":
        if language_id is None:
            language_id = LanguageID()
            language_id.setup()
        steps = [language_id] + steps
    return steps


def datatrove_language_filter():
    """datatrove's ``LanguageFilter`` (ft176 backend, the 24 EU languages, threshold 0.65)
    reading the lid.176 lite file that our first pass reads, loaded the way datatrove loads
    its own (``fasttext.FastText._FastText``)."""
    from datatrove.pipeline.filters import LanguageFilter
    from fasttext.FastText import _FastText

    from eurollm_jax.filtering.langid import lid176_model_path
    from eurollm_jax.languages import EU_LANGUAGES

    step = LanguageFilter(languages=list(EU_LANGUAGES), language_threshold=0.65)
    step.model._model = _FastText(lid176_model_path())
    return step


def datatrove_steps(chain: str = "full", language_filter=None) -> list:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    steps = [GopherRepetitionFilter(), GopherQualityFilter(),
             C4QualityFilter(filter_no_terminal_punct=False), FineWebQualityFilter()]
    if chain == "full":
        steps = [language_filter or datatrove_language_filter()] + steps
    return steps


def _ours(docs, steps):
    from eurollm_jax.filtering.text import get_tokenizer

    get_tokenizer.cache_clear()
    t0 = time.perf_counter()
    out = first_drops(steps, docs)
    return time.perf_counter() - t0, out


def _datatrove(docs, steps):
    from datatrove.utils import text as dt_text

    dt_text.split_into_parts.cache_clear()
    t0 = time.perf_counter()
    out = first_drops(steps, docs, datatrove_reason)
    return time.perf_counter() - t0, out


def compare(docs, chain: str = "full", repeats: int = 5) -> dict:
    """Times both chains on ``docs`` (``filtering.Document``s), alternating; medians."""
    try:
        from datatrove.data import Document as DTDocument
    except ImportError:
        print("datatrove is not installed: pip install 'datatrove[processing]' spacy", flush=True)
        DTDocument = None
    ours = our_steps(chain)
    peer = datatrove_steps(chain) if DTDocument is not None else None

    def dt_docs(ds):
        return [DTDocument(text=d.text, id=d.id) for d in ds]

    # untimed: imports, tables, spaCy, lingua's models (loaded on first use)
    _ours(copy.deepcopy(docs), ours)
    if peer is not None:
        _datatrove(dt_docs(docs[:50]), peer)
    lid = ours[0] if chain == "full" else None
    if lid is not None:
        lid.identifier.counts.update(texts=0, second_pass=0)
    ours_t, dt_t = [], []
    ours_out = dt_out = None
    for _ in range(repeats):
        t, ours_out = _ours(copy.deepcopy(docs), ours)
        ours_t.append(t)
        if peer is not None:
            t, dt_out = _datatrove(dt_docs(docs), peer)
            dt_t.append(t)
    ours_med = statistics.median(ours_t)
    result = {"benchmark": f"filter_{chain}", "docs": len(docs),
              "chars": sum(len(d.text) for d in docs), "repeats": repeats,
              "ours_s_median": round(ours_med, 4),
              "ours_docs_per_s_per_core": round(len(docs) / ours_med, 1),
              "ours_kept": sum(o is None for o in ours_out)}
    if lid is not None:
        c = lid.identifier.counts
        result["ours_second_pass_rate"] = round(c["second_pass"] / max(c["texts"], 1), 4)
    if dt_t:
        dt_med = statistics.median(dt_t)
        agree = sum((a is None) == (b is None) for a, b in zip(ours_out, dt_out)) / len(docs)
        result.update({"datatrove_s_median": round(dt_med, 4),
                       "datatrove_docs_per_s_per_core": round(len(docs) / dt_med, 1),
                       "datatrove_kept": sum(o is None for o in dt_out),
                       "speedup_vs_datatrove": round(dt_med / ours_med, 2),
                       "keep_drop_agreement": round(agree, 4)})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launch.bench filter")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chain", choices=CHAINS, default="full",
                        help="full: language ID + heuristics on both sides; heuristics: only those")
    args = parser.parse_args((argv or [])[1:])

    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from eurollm_jax.filtering.sample_corpus import english_corpus

    docs = english_corpus(args.docs, seed=args.seed)
    print(json.dumps(compare(docs, args.chain, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
