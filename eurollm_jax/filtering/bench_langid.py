"""Benchmark: language identifiers on held-out text in the 24 EU languages, short to long inputs.

``python -m launch.bench langid [--sources=udhr,spacy] [--identifiers=filter,fasttext,...]
[--output=DIR] [--throughput [--docs=2000]]``

Text (``evaluation_texts``) ships with the project, so the default runs wherever it installs:
the whole Universal Declaration of Human Rights in the 24 EU languages (``udhr/``, vendored from
the Unicode UDHR project, see its README), the UDHR passages of ``gflanguages`` for the
neighbours below, and spaCy's example sentences (20 EU languages; spaCy is in the test
extra). ``--sources=gettext`` adds translated program messages from Debian's
``/usr/share/locale`` catalogues where a machine has them (the development text that the
filter's defaults were chosen on: see docs/language_id.md; py3langid's model was trained on
Debian's translations, so that source is not held out for it). Each source's lines are the
short inputs (one sentence or clause, split at ``. ! ? ;``; 4+ words); ``medium`` joins 3
consecutive ones, ``long`` up to 8 (at least 300 characters).

Neighbour languages that identifiers confuse with EU ones (Bosnian, Serbian, Norwegian Bokmal
and Nynorsk, Scottish Gaelic, Macedonian, Russian, Ukrainian, Catalan, Galician, Welsh,
Icelandic) are evaluated too, so each EU language's precision counts the neighbour text it
claims.

Identifiers: ``filter`` (the filtering step's identifier with the default config: the label
is restricted to the 24 EU languages, and ``filter`` also reports how much correct text the
step keeps at its thresholds), ``fasttext-eu`` (the step before issue 21: lid.176 alone,
restricted to the EU, Croatian label group), ``fasttext`` (lid.176 top label), ``py3langid``,
``lingua`` (all 75 of its languages, high accuracy mode) and ``cld3``. Missing packages are
skipped with a note.

Writes ``DIR/report.md`` (accuracy per language and input length, precision, the confusion
pairs sk/cs, hr/sr/bs/sl, da/nb/sv, ga/gd and Maltese, speed), ``DIR/confusion.png`` (the
filter step's decisions on short inputs: the label it keeps a text with, or "dropped"; rows
normalised) and ``DIR/results.json``; prints
one JSON line (macro accuracy and the worst language per identifier and length; with
``--throughput``, the language ID step's documents/s per core, see ``throughput``, and the
whole chain's against datatrove's, see ``chain_speed``).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import re
import time
from typing import Callable, Sequence

from eurollm_jax.fileio import atomic_open, write_json, write_text
from eurollm_jax.languages import EU_LANGUAGES

# Neighbours of EU languages: their gflanguages keys (script included) and spaCy codes.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "bs": ("bs_Latn",), "sr": ("sr_Latn", "sr_Cyrl"), "nb": ("nb_Latn",), "nn": ("nn_Latn",),
    "gd": ("gd_Latn",), "mk": ("mk_Cyrl",), "ru": ("ru_Cyrl",), "uk": ("uk_Cyrl",),
    "ca": ("ca_Latn",), "gl": ("gl_Latn",), "cy": ("cy_Latn",), "is": ("is_Latn",),
}
SOURCES = ("udhr", "spacy", "gettext")
DEFAULT_SOURCES = ("udhr", "spacy")
LENGTHS = {"short": 1, "medium": 3, "long": 8}
LONG_MIN_CHARS = 300
CONFUSION_PAIRS = (("sk", "cs"), ("hr", "sr", "bs", "sl"), ("da", "nb", "nn", "sv"),
                   ("ga", "gd"), ("mt",))
IDENTIFIERS = ("filter", "fasttext-eu", "fasttext", "py3langid", "lingua", "cld3")
# Label variants counted as one language when scoring every identifier.
VARIANTS = {"sh": "hr", "no": "nb"}
GETTEXT_PER_LANGUAGE = 150


# ---------------------------------------------------------------- text


UDHR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udhr")


def udhr_paragraphs(lang: str) -> list[str]:
    """The whole UDHR for an EU language (``udhr/<lang>.txt``, one paragraph per line, vendored
    from the Unicode UDHR project: see ``udhr/README.md``); for a neighbour language, the
    ``gflanguages`` passages."""
    path = os.path.join(UDHR_DIR, f"{lang}.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    from eurollm_jax.data import demo_corpus

    return [line for k in NEIGHBOURS.get(lang, (lang,)) for line in demo_corpus.udhr_documents(k)]


def _lines(lang: str, source: str) -> list[str]:
    from eurollm_jax.data import demo_corpus

    if source == "udhr":  # paragraphs, split at sentence (and clause) ends
        return [s for line in udhr_paragraphs(lang) for s in re.split(r"(?<=[.!?;])\s+", line)]
    if source == "spacy":
        return demo_corpus.spacy_documents(lang)
    if source == "gettext":
        return _gettext_lines(lang)
    raise ValueError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")


def _gettext_lines(lang: str, locale_dir: str = "/usr/share/locale") -> list[str]:
    """Up to 150 translated one-line program messages (30-200 characters), a seeded sample."""
    import random

    from eurollm_jax.data import demo_corpus

    directory = os.path.join(locale_dir, {"en": "de", "sr": "sr@latin"}.get(lang, lang),
                             "LC_MESSAGES")
    if not os.path.isdir(directory):
        return []
    msgs = set()
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".mo") or name.startswith("iso_"):
            continue
        for key, value in demo_corpus._catalog(os.path.join(directory, name)).items():
            if not (isinstance(key, str) and key and isinstance(value, str)):
                continue
            if lang != "en" and value == key:
                continue  # untranslated
            msg = " ".join((key if lang == "en" else value).split())
            if 30 <= len(msg) <= 200 and demo_corpus._is_prose(msg):
                msgs.add(msg)
    msgs = sorted(msgs)
    random.Random(0).shuffle(msgs)
    return msgs[:GETTEXT_PER_LANGUAGE]


def evaluation_texts(languages: Sequence[str] = EU_LANGUAGES + tuple(NEIGHBOURS),
                     sources: Sequence[str] = DEFAULT_SOURCES) -> list[dict]:
    """``{"lang", "source", "length", "text"}`` rows: every short input of each language and
    source, and the medium and long inputs made of consecutive lines."""
    rows = []
    for lang in languages:
        for source in sources:
            lines = [" ".join(x.split()) for x in _lines(lang, source)]
            lines = list(dict.fromkeys(x for x in lines if len(x.split()) >= 4))
            for length, n in LENGTHS.items():
                if n == 1:
                    chunks = lines
                else:
                    chunks = [" ".join(lines[i:i + n]) for i in range(0, len(lines), n)
                              if len(lines[i:i + n]) == n or i == 0]
                    if length == "long":
                        chunks = [c for c in chunks if len(c) >= LONG_MIN_CHARS]
                rows.extend({"lang": lang, "source": source, "length": length, "text": c}
                            for c in chunks)
    return rows


# ---------------------------------------------------------------- identifiers


def _iso(language) -> str:
    return language.iso_code_639_1.name.lower()


def make_identifier(name: str) -> Callable[[list[str]], list[tuple[str, bool]]]:
    """``fn(texts) -> [(label, kept)]``; ``kept`` is the filter step's decision (True for the
    other identifiers). ImportError when the identifier's package is missing."""
    from eurollm_jax.filtering.langid import LanguageID, LanguageIdentifier

    if name in ("filter", "fasttext-eu"):
        step = LanguageID() if name == "filter" else LanguageID(second_pass=())
        step.setup()

        def run(texts):
            preds = step.identifier.predict(texts)
            return [(p.language, p.score >= step.thresholds.get(p.language, step.threshold))
                    for p in preds]
        run.step = step
        return run
    if name == "fasttext":
        ident = LanguageIdentifier("fasttext", label_groups={"hr": ("sh",), "nb": ("no",)})
        ident.predict(["probe"])
        return lambda texts: [(p.language, True) for p in ident.predict(texts)]
    if name == "py3langid":
        ident = LanguageIdentifier("py3langid")
        ident.predict(["probe"])
        return lambda texts: [(p.language, True) for p in ident.predict(texts)]
    if name == "lingua":
        from lingua import LanguageDetectorBuilder

        det = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

        def run(texts):
            return [(_iso(x) if x is not None else "unknown", True)
                    for x in det.detect_languages_in_parallel_of(texts)]
        return run
    if name == "cld3":
        import gcld3

        det = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
        return lambda texts: [(det.FindLanguage(t).language.split("-")[0], True) for t in texts]
    raise ValueError(f"unknown identifier {name!r}; choose from {', '.join(IDENTIFIERS)}")


# ---------------------------------------------------------------- scoring


def score(rows: list[dict], labels: list[str], kept: list[bool] | None = None) -> dict:
    """Per length: accuracy (recall) and precision per EU language, macro accuracy, the worst
    language, confusion counts; with ``kept``, the fraction of each language's text that is
    both labelled right and kept."""
    out = {}
    for length in LENGTHS:
        idx = [i for i, r in enumerate(rows) if r["length"] == length]
        if not idx:
            continue
        conf = collections.Counter()
        for i in idx:
            conf[(rows[i]["lang"], VARIANTS.get(labels[i], labels[i]))] += 1
        gold_n = collections.Counter(rows[i]["lang"] for i in idx)
        # precision: of the texts labelled x (and, for the filter step, kept), the share in x
        claimed = collections.Counter()
        for i in idx:
            if kept is None or kept[i]:
                claimed[(rows[i]["lang"], VARIANTS.get(labels[i], labels[i]))] += 1
        pred_n = collections.Counter()
        for (g, p), n in claimed.items():
            pred_n[p] += n
        langs = [x for x in EU_LANGUAGES if gold_n[x]]
        recall = {x: conf[(x, x)] / gold_n[x] for x in langs}
        precision = {x: (claimed[(x, x)] / pred_n[x] if pred_n[x] else None) for x in langs}
        res = {"texts": len(idx), "recall": recall, "precision": precision,
               "macro_accuracy": sum(recall.values()) / len(recall),
               "worst": min(recall, key=recall.get),
               "confusion": {f"{g}>{p}": n for (g, p), n in sorted(conf.items())},
               "support": dict(gold_n)}
        if kept is not None:
            good = collections.Counter(rows[i]["lang"] for i in idx
                                       if VARIANTS.get(labels[i], labels[i]) == rows[i]["lang"]
                                       and kept[i])
            res["kept_correct"] = {x: good[x] / gold_n[x] for x in langs}
            neighbours = [i for i in idx if rows[i]["lang"] not in EU_LANGUAGES]
            res["neighbours_kept"] = (sum(kept[i] for i in neighbours) / len(neighbours)
                                      if neighbours else None)
        out[length] = res
    return out


CHAR_BINS = (0, 40, 60, 80, 100, 120, 150, 200, 300, 500)
# "0-40", "40-60", ..., "500+": the bin names of CHAR_BINS
CHAR_BIN_NAMES = tuple(f"{lo}-{hi}" for lo, hi in zip(CHAR_BINS, CHAR_BINS[1:])) + (
    f"{CHAR_BINS[-1]}+",)


def by_chars(rows: list[dict], labels: list[str]) -> dict[str, dict]:
    """Accuracy over the EU-language inputs of every length, per bin of input length in
    characters (whitespace collapsed): where an identifier starts to err on short text (how
    ``second_pass_below_chars`` was chosen, on the development text; docs/language_id.md)."""
    cells = collections.defaultdict(lambda: [0, 0])
    for r, lab in zip(rows, labels):
        if r["lang"] not in EU_LANGUAGES:
            continue
        n = len(" ".join(r["text"].split()))
        key = CHAR_BIN_NAMES[bisect.bisect_right(CHAR_BINS, n) - 1]
        cells[key][0] += VARIANTS.get(lab, lab) == r["lang"]
        cells[key][1] += 1
    return {k: {"texts": n, "accuracy": c / n} for k, (c, n) in cells.items()}


def confusion_pairs(result: dict) -> dict[str, dict[str, int]]:
    """For each group of CONFUSION_PAIRS: ``{"gold>pred": n}`` of the short inputs, within the
    group (and, for Maltese, wherever it goes)."""
    conf = result.get("short", {}).get("confusion", {})
    out = {}
    for group in CONFUSION_PAIRS:
        cells = {}
        for key, n in conf.items():
            g, p = key.split(">")
            if g in group and g != p and (p in group or len(group) == 1):
                cells[key] = n
        out["/".join(group)] = cells
    return out


# ---------------------------------------------------------------- report


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown(results: dict, meta: dict) -> str:
    names = list(results)
    lines = ["# Language identification on held-out EU text", "",
             f"Sources: {', '.join(meta['sources'])}; {meta['texts']:,} texts "
             f"({meta['per_length']}); {len(meta['languages'])} languages "
             f"({len(EU_LANGUAGES)} EU + neighbours: {', '.join(meta['neighbours'])}).", "",
             "Macro accuracy over the 24 EU languages (worst language in brackets):", "",
             "| identifier | " + " | ".join(LENGTHS) + " | ms per text |",
             "|---|" + "---|" * (len(LENGTHS) + 1)]
    for name in names:
        r = results[name]
        cells = []
        for length in LENGTHS:
            s = r["scores"].get(length)
            if s is None:
                cells.append("-")
                continue
            worst = s["worst"]
            cells.append(f"{_pct(s['macro_accuracy'])} ({worst} {_pct(s['recall'][worst])})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['ms_per_text']:.2f} |")
    for name in names:
        r = results[name]["scores"]
        lines += ["", f"## {name}", "", "Accuracy (recall) per language and input length, and "
                  "precision on short inputs (neighbour text claimed as the language counts "
                  "against it)" + (" among the texts the step keeps, and the share of each "
                                   "language's short inputs the step keeps with the right label"
                                   if "kept_correct" in r.get("short", {}) else "") + ":", ""]
        kept = "kept_correct" in r.get("short", {})
        head = ["language", "n short"] + list(LENGTHS) + ["precision"] + (["kept"] if kept else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for lang in EU_LANGUAGES:
            if lang not in r.get("short", {}).get("recall", {}):
                continue
            cells = [lang, str(r["short"]["support"][lang])]
            cells += [_pct(r[x]["recall"].get(lang)) if x in r else "-" for x in LENGTHS]
            cells.append(_pct(r["short"]["precision"][lang]))
            if kept:
                cells.append(_pct(r["short"]["kept_correct"][lang]))
            lines.append("| " + " | ".join(cells) + " |")
        if kept and r["short"].get("neighbours_kept") is not None:
            lines += ["", f"Neighbour-language short inputs kept by the step: "
                          f"{_pct(r['short']['neighbours_kept'])}%."]
        pairs = confusion_pairs(r)
        lines += ["", "Confusions on short inputs (gold > predicted: count):", ""]
        for group, cells in pairs.items():
            body = ", ".join(f"{k} {v}" for k, v in sorted(cells.items(), key=lambda kv: -kv[1]))
            lines.append(f"- {group}: {body or 'none'}")
    bins = CHAR_BIN_NAMES
    lines += ["", "## Accuracy by input length in characters", "",
              "EU-language inputs of every length (short, medium, long pooled), per bin of "
              "characters; texts per bin in the first row:", "",
              "| identifier | " + " | ".join(bins) + " |", "|---|" + "---|" * len(bins)]
    first = results[names[0]]["by_chars"] if names else {}
    lines.append("| texts | " + " | ".join(str(first.get(b, {}).get("texts", 0)) for b in bins)
                 + " |")
    for name in names:
        cells = results[name]["by_chars"]
        lines.append(f"| {name} | " + " | ".join(
            _pct(cells[b]["accuracy"]) if b in cells else "-" for b in bins) + " |")
    if meta.get("second_pass_rate") is not None:
        lines += ["", f"The filter's second pass ran on {_pct(meta['second_pass_rate'])}% of the "
                      "texts."]
    if meta.get("skipped"):
        lines += ["", "Skipped (package missing): " + ", ".join(meta["skipped"])]
    return "\n".join(lines) + "\n"


def heatmap(rows: list[dict], labels: list[str], path: str, title: str) -> None:
    """Rows: gold language (EU then neighbours), columns: predicted; short inputs, row share."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    idx = [i for i, r in enumerate(rows) if r["length"] == "short"]
    gold = list(dict.fromkeys(rows[i]["lang"] for i in idx))
    gold = [x for x in EU_LANGUAGES if x in gold] + [x for x in gold if x not in EU_LANGUAGES]
    cols = gold + ["other"] + (["dropped"] if "dropped" in labels else [])
    m = np.zeros((len(gold), len(cols)))
    for i in idx:
        p = VARIANTS.get(labels[i], labels[i])
        m[gold.index(rows[i]["lang"]), cols.index(p if p in cols else "other")] += 1
    m = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(12, 10), dpi=100)
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=8)
    ax.set_yticks(range(len(gold)), gold, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true language")
    ax.axhline(len([x for x in gold if x in EU_LANGUAGES]) - 0.5, color="#d62728", lw=0.8)
    for (r, c), v in np.ndenumerate(m):
        if v > 0 and r != c:
            ax.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=6,
                    color="white" if v > 0.5 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, label="share of the true language's inputs")
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


# ---------------------------------------------------------------- throughput


def throughput(docs: int = 2000, seed: int = 0, repeats: int = 3) -> dict:
    """Documents/s per core of the language ID step, the default (with the second pass), the
    default without the short-text rule (``second_pass_below_chars=0``) and fastText alone,
    with the share of texts the second pass read, on the filter benchmark's corpus
    (``sample_corpus.english_corpus``, web-like English pages) and on multilingual text (this
    benchmark's medium and long inputs, every language). Median of ``repeats``."""
    import statistics

    from eurollm_jax.documents import Document
    from eurollm_jax.filtering.langid import LanguageID
    from eurollm_jax.filtering.sample_corpus import english_corpus

    corpora = {"english_web": [d.text for d in english_corpus(docs, seed=seed)],
               "eu_medium_long": [r["text"] for r in evaluation_texts(sources=("udhr",))
                                  if r["length"] != "short"]}
    out = {}
    steps = (("default", LanguageID()),
             ("no_length_rule", LanguageID(second_pass_below_chars=0)),
             ("fasttext_only", LanguageID(second_pass=())))
    for label, step in steps:
        step.setup()
        for corpus, texts in corpora.items():
            step([Document("warm", t) for t in texts])  # lingua loads its models lazily
            step.identifier.counts.update(texts=0, second_pass=0)
            times = []
            for _ in range(repeats):
                batch = [Document(str(i), t) for i, t in enumerate(texts)]
                t0 = time.perf_counter()
                for i in range(0, len(batch), 256):
                    step(batch[i:i + 256])
                times.append(time.perf_counter() - t0)
            c = step.identifier.counts
            out[f"{label}/{corpus}"] = {
                "docs": len(texts), "docs_per_s": round(len(texts) / statistics.median(times), 1),
                "second_pass_rate": round(c["second_pass"] / max(c["texts"], 1), 4)}
    return out


def chain_speed(docs: int = 1000, seed: int = 0, repeats: int = 3) -> dict:
    """The filter benchmark's whole-chain comparison (``python -m launch.bench filter``,
    ``bench.compare``): language ID + FineWeb heuristics, ours against datatrove's
    ``LanguageFilter`` (the same lid.176 lite file) + its heuristics, on ``english_corpus``."""
    from eurollm_jax.filtering import bench
    from eurollm_jax.filtering.sample_corpus import english_corpus

    return bench.compare(english_corpus(docs, seed=seed), "full", repeats)


# ---------------------------------------------------------------- driver


def run(output_dir: str, sources: Sequence[str] = DEFAULT_SOURCES,
        identifiers: Sequence[str] = IDENTIFIERS,
        languages: Sequence[str] = EU_LANGUAGES + tuple(NEIGHBOURS)) -> dict:
    """Evaluates ``identifiers`` on ``evaluation_texts``; writes the report; returns results."""
    rows = evaluation_texts(languages, sources)
    if not rows:
        raise SystemExit(f"no evaluation text from sources {list(sources)}")
    texts = [r["text"] for r in rows]
    results, skipped, meta = {}, [], {}
    filter_labels = None
    for name in identifiers:
        try:
            fn = make_identifier(name)
        except ImportError as e:
            skipped.append(f"{name} ({e})")
            continue
        # lingua loads a language's model the first time it is asked about it: the filter's
        # timing pass runs after one untimed pass, the others' after one text per language
        fn(texts if name == "filter" else list({r["lang"]: r["text"] for r in rows}.values()))
        if name == "filter":
            fn.step.identifier.counts.update(texts=0, second_pass=0)
        t0 = time.perf_counter()
        out = fn(texts)
        dt = time.perf_counter() - t0
        labels = [x[0] for x in out]
        kept = [x[1] for x in out] if name == "filter" else None
        results[name] = {"scores": score(rows, labels, kept), "ms_per_text": 1e3 * dt / len(rows)}
        results[name]["pairs"] = confusion_pairs(results[name]["scores"])
        results[name]["by_chars"] = by_chars(rows, labels)
        if name == "filter":  # the heatmap shows what the step does: its label, or dropped
            filter_labels = [lab if k else "dropped" for lab, k in zip(labels, kept)]
            c = fn.step.identifier.counts
            meta["second_pass_rate"] = c["second_pass"] / max(c["texts"], 1)
    per_length = collections.Counter(r["length"] for r in rows)
    meta.update({"sources": list(sources), "texts": len(rows), "skipped": skipped,
                 "per_length": ", ".join(f"{k} {v}" for k, v in per_length.items()),
                 "languages": sorted({r["lang"] for r in rows}),
                 "neighbours": [x for x in NEIGHBOURS if x in {r["lang"] for r in rows}]})
    os.makedirs(output_dir, exist_ok=True)
    write_text(os.path.join(output_dir, "report.md"), markdown(results, meta))
    write_json(os.path.join(output_dir, "results.json"), {"meta": meta, "results": results})
    if filter_labels is not None or results:
        name = "filter" if filter_labels is not None else next(iter(results))
        labels = filter_labels or [x[0] for x in make_identifier(name)(texts)]
        what = ("label kept by the step, or dropped" if filter_labels is not None
                else "predicted label")
        heatmap(rows, labels, os.path.join(output_dir, "confusion.png"),
                f"{name}: {what}, short inputs ({', '.join(sources)})")
    return {"meta": meta, "results": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launch.bench langid")
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES),
                        help=f"comma-separated, from {', '.join(SOURCES)}")
    parser.add_argument("--identifiers", default=",".join(IDENTIFIERS))
    parser.add_argument("--languages", default="", help="default: 24 EU + neighbours")
    parser.add_argument("--output", default="/tmp/eurollm_langid_bench")
    parser.add_argument("--throughput", action="store_true",
                        help="also time the language ID step (documents/s per core)")
    parser.add_argument("--docs", type=int, default=2000, help="--throughput: English documents")
    args = parser.parse_args((argv or [])[1:])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sources = [s for s in args.sources.split(",") if s]
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        parser.error(f"unknown source(s) {bad}; choose from {', '.join(SOURCES)}")
    idents = [s for s in args.identifiers.split(",") if s]
    bad = [s for s in idents if s not in IDENTIFIERS]
    if bad:
        parser.error(f"unknown identifier(s) {bad}; choose from {', '.join(IDENTIFIERS)}")
    langs = [s for s in args.languages.split(",") if s] or list(EU_LANGUAGES + tuple(NEIGHBOURS))
    out = run(args.output, sources, idents, langs)
    summary = {"benchmark": "langid", "texts": out["meta"]["texts"],
               "sources": out["meta"]["sources"], "output": args.output}
    for name, r in out["results"].items():
        summary[name] = {length: {"macro": round(s["macro_accuracy"], 4), "worst": s["worst"],
                                  "worst_accuracy": round(s["recall"][s["worst"]], 4)}
                         for length, s in r["scores"].items()}
    if out["meta"]["skipped"]:
        summary["skipped"] = out["meta"]["skipped"]
    if args.throughput:
        summary["throughput"] = throughput(args.docs)
        summary["chain"] = chain_speed(min(args.docs, 1000))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
