"""The drop report: per language, how many documents (and characters) each filter removed.

``ShardStats`` counts records as they are written; ``write_report`` writes
``report.json`` (machine-readable, consumed by the release datasheet), ``report.md`` and
``report.csv`` (a table: language, documents in, kept, dropped per step) and ``report.png`` (a
stacked bar chart of the fraction of each language's documents kept and removed per step), so a
reader sees whose text each filter removes. ``bias_warnings`` names each language that a step
(or the whole chain, ``"all"``) removes far more of than it removes of the median language:
more than ``bias_ratio`` times the median fraction and at least ``min_excess`` above it
(``config.ReportSection``, the job's ``report`` section); report.md starts with them and
``write_report`` prints them on stderr, so a biased filter is seen before training on its output.

report.json (for the release datasheet): ``documents``, ``kept``, ``dropped``;
``dropped_by_step`` (``{"gopher_quality": n, ...}``) and ``dropped_by_reason``
(``{"gopher_quality:gopher_short_doc": n, ...}``); ``languages``: one row per language
(``language``, ``documents``, ``kept``, ``kept_fraction``, ``kept_chars``, ``dropped``:
``{reason: n}``, ``removed_fraction``: ``{step: fraction of the language's documents}``),
``unknown`` for records rejected before language ID; ``median_removed_fraction``: ``{step:
median over the languages}``; ``bias_warnings``: ``[{"language", "step", "fraction",
"median", "ratio", "documents"}]``; ``stats``: documents and characters per language and
outcome; ``config``: the job's full filter config.
"""

from __future__ import annotations

import collections
import csv
import os
import statistics
import sys
from typing import Any

from eurollm_jax.filtering.config import ReportSection
from eurollm_jax.filtering.core import UNKNOWN_LANGUAGE
from eurollm_jax.fileio import atomic_open, write_json, write_text

KEPT = "kept"


class ShardStats:
    """``docs[lang][outcome]`` and ``chars[lang][outcome]``; outcome is "kept" or a drop reason."""

    def __init__(self):
        self.docs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.chars: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def add(self, record: dict[str, Any]) -> None:
        meta = record.get("metadata") or {}
        lang = meta.get("language") or UNKNOWN_LANGUAGE
        outcome = record.get("drop_reason") or KEPT
        self.docs[lang][outcome] += 1
        self.chars[lang][outcome] += len(record.get("text") or "")

    def merge(self, other: "ShardStats") -> None:
        for lang, c in other.docs.items():
            self.docs[lang].update(c)
        for lang, c in other.chars.items():
            self.chars[lang].update(c)

    def to_json(self) -> dict[str, Any]:
        return {"docs": {k: dict(v) for k, v in sorted(self.docs.items())},
                "chars": {k: dict(v) for k, v in sorted(self.chars.items())}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "ShardStats":
        s = cls()
        for lang, c in obj.get("docs", {}).items():
            s.docs[lang].update(c)
        for lang, c in obj.get("chars", {}).items():
            s.chars[lang].update(c)
        return s


def by_step(by_reason: dict[str, int]) -> collections.Counter:
    """``{"step:reason": n}`` folded to ``{"step": n}``."""
    steps = collections.Counter()
    for r, n in by_reason.items():
        steps[r.split(":", 1)[0]] += n
    return steps


ALL_STEPS = "all"


def bias_warnings(rows: list[dict[str, Any]], steps: list[str],
                  settings: ReportSection = ReportSection()) -> tuple[dict, list[dict]]:
    """``(median removed fraction per step, warnings)`` over the per-language ``rows`` (each
    with ``documents`` and ``removed_fraction``); languages with fewer than
    ``settings.min_documents`` documents, and ``unknown``, neither count nor get warnings."""
    judged = [r for r in rows
              if r["language"] != UNKNOWN_LANGUAGE and r["documents"] >= settings.min_documents]
    medians, warnings = {}, []
    for step in steps + [ALL_STEPS]:
        if not judged:
            break
        fractions = [r["removed_fraction"].get(step, 0.0) for r in judged]
        median = statistics.median(fractions)
        medians[step] = round(median, 4)
        for r, f in zip(judged, fractions):
            if f > settings.bias_ratio * median and f - median >= settings.min_excess:
                warnings.append({"language": r["language"], "step": step, "fraction": round(f, 4),
                                 "median": round(median, 4),
                                 "ratio": round(f / median, 2) if median else None,
                                 "documents": r["documents"]})
    warnings.sort(key=lambda w: (w["step"] == ALL_STEPS, -w["fraction"] + w["median"]))
    return medians, warnings


def warning_text(w: dict[str, Any]) -> str:
    what = "the filters remove" if w["step"] == ALL_STEPS else f"`{w['step']}` removes"
    times = f"{w['ratio']:.1f}x" if w["ratio"] is not None else "far more than"
    return (f"{what} {100 * w['fraction']:.1f}% of the {w['documents']:,} `{w['language']}` "
            f"documents, {times} the median language's {100 * w['median']:.1f}%")


def summarize(stats: ShardStats, settings: ReportSection = ReportSection()) -> dict[str, Any]:
    """Report dict: totals, per-language table, per-reason totals, bias warnings."""
    reasons = sorted({o for c in stats.docs.values() for o in c if o != KEPT})
    langs = sorted(stats.docs, key=lambda lang: (-sum(stats.docs[lang].values()), lang))
    rows = []
    for lang in langs:
        c = stats.docs[lang]
        total = sum(c.values())
        dropped = {r: c[r] for r in reasons if c.get(r)}
        removed = {s: n / total for s, n in by_step(dropped).items()} if total else {}
        removed[ALL_STEPS] = (total - c.get(KEPT, 0)) / total if total else 0.0
        rows.append({"language": lang, "documents": total, "kept": c.get(KEPT, 0),
                     "kept_fraction": round(c.get(KEPT, 0) / total, 4) if total else 0.0,
                     "kept_chars": stats.chars[lang].get(KEPT, 0),
                     "dropped": dropped,
                     "removed_fraction": {s: round(f, 4) for s, f in sorted(removed.items())}})
    by_reason = collections.Counter()
    for c in stats.docs.values():
        by_reason.update({r: n for r, n in c.items() if r != KEPT})
    total = sum(sum(c.values()) for c in stats.docs.values())
    kept = sum(c.get(KEPT, 0) for c in stats.docs.values())
    steps = sorted(by_step(by_reason))
    medians, warnings = bias_warnings(rows, steps, settings)
    return {"documents": total, "kept": kept, "dropped": total - kept,
            "dropped_by_reason": dict(sorted(by_reason.items())),
            "dropped_by_step": dict(sorted(by_step(by_reason).items())),
            "languages": rows, "reasons": reasons,
            "median_removed_fraction": medians, "bias_warnings": warnings,
            "bias_settings": settings.to_dict()}


def _markdown(summary: dict[str, Any]) -> str:
    steps = sorted(summary["dropped_by_step"])
    head = ["language", "documents", "kept", "kept %"] + steps
    lines = ["# Filtering drop report", "",
             f"{summary['documents']:,} documents: {summary['kept']:,} kept, "
             f"{summary['dropped']:,} dropped.", ""]
    warnings = summary.get("bias_warnings") or []
    settings = summary.get("bias_settings") or ReportSection().to_dict()
    if warnings:
        lines += [f"**Warning: the filters remove far more of some languages than of the median "
                  f"language** (more than {settings['bias_ratio']:g}x the median fraction and "
                  f"{100 * settings['min_excess']:.0f} points above it; languages with "
                  f"{settings['min_documents']}+ documents). Check these before training on the "
                  "output (a lower `language_id.thresholds.<lang>`, a step's "
                  "`heuristics.per_language`, or the documents in dropped/):", ""]
        lines += [f"- {warning_text(w)}" for w in warnings]
        lines.append("")
    lines += ["Documents removed per language and step, and in brackets the percentage of the "
              "language's documents (the reasons are in report.json):", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["languages"]:
        per_step = by_step(row["dropped"])
        frac = row.get("removed_fraction", {})
        cells = [row["language"], f"{row['documents']:,}", f"{row['kept']:,}",
                 f"{100 * row['kept_fraction']:.1f}"] + [
                     f"{per_step.get(s, 0):,} ({100 * frac.get(s, 0.0):.0f})" for s in steps]
        lines.append("| " + " | ".join(cells) + " |")
    medians = summary.get("median_removed_fraction") or {}
    if medians:
        cells = ["median language", "", "", f"{100 * (1 - medians.get(ALL_STEPS, 0.0)):.1f}"]
        cells += [f"({100 * medians.get(s, 0.0):.0f})" for s in steps]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Drop reasons overall:", ""]
    lines += [f"- `{r}`: {n:,}" for r, n in summary["dropped_by_reason"].items()]
    return "\n".join(lines) + "\n"


def _chart(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = summary["languages"]
    steps = sorted(summary["dropped_by_step"])
    labels = [r["language"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(rows) + 3), 4.5), dpi=100)
    bottom = [0.0] * len(rows)
    series = [("kept", [r["kept"] / max(r["documents"], 1) for r in rows])]
    per_step = [by_step(r["dropped"]) for r in rows]
    for s in steps:
        series.append((s, [p[s] / max(r["documents"], 1) for p, r in zip(per_step, rows)]))
    palette = ("#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#ff9896", "#c5b0d5", "#c49c94",
               "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")  # no greens: green means kept
    for i, (name, vals) in enumerate(series):
        ax.bar(labels, vals, bottom=bottom, label=name,
               color="#2ca02c" if name == "kept" else palette[(i - 1) % len(palette)])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("fraction of documents")
    ax.set_ylim(0, 1)
    ax.set_title("Kept and removed documents by language and filter step")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def write_report(stats: ShardStats, output_dir: str, config: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Writes report.json/md/csv/png into ``output_dir``; returns the summary dict. The bias
    warning's settings are ``config["report"]`` (``config.ReportSection``'s fields)."""
    settings = ReportSection.from_mapping((config or {}).get("report"), "report")
    summary = summarize(stats, settings)
    for w in summary["bias_warnings"]:
        print(f"[filter] WARNING: {warning_text(w).replace('`', '')}", file=sys.stderr, flush=True)
    summary["stats"] = stats.to_json()
    if config is not None:
        summary["config"] = config
    write_json(os.path.join(output_dir, "report.json"), summary)
    write_text(os.path.join(output_dir, "report.md"), _markdown(summary))
    with atomic_open(os.path.join(output_dir, "report.csv"), newline="") as f:  # csv's own line ends
        w = csv.writer(f)
        w.writerow(["language", "documents", "kept"] + summary["reasons"])
        for row in summary["languages"]:
            w.writerow([row["language"], row["documents"], row["kept"]]
                       + [row["dropped"].get(r, 0) for r in summary["reasons"]])
    _chart(summary, os.path.join(output_dir, "report.png"))
    return summary
