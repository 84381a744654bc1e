"""Outputs of a RAG run: the records, one strategy x language table and a plot.

``write_run(out_dir, records, extra)`` writes ``records.jsonl`` (one line per strategy and
question), ``results.json`` (the table of ``metrics.summarise`` plus ``extra``: translation
stats, LLM usage, settings), ``table.md`` (rows: strategies; columns: languages and the
average; cells: flexible EM and, for the strategies that have it, the answer-language rate, in
percent) and ``table.png`` (grouped bars of EM per language), all written atomically.
"""

from __future__ import annotations

import os
from typing import Sequence

from eurollm_jax import fileio
from eurollm_jax.rag.metrics import summarise


def markdown_table(table: dict, *, metric: str = "em", second: str | None = "language_ok",
                   row_label: str = "strategy") -> str:
    languages = sorted({lang for row in table.values() for lang in row if lang != "avg"})
    cols = languages + ["avg"]
    lines = [f"| {row_label} | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    for name, row in table.items():
        cells = []
        for c in cols:
            if c not in row:
                cells.append("")
                continue
            cell = f"{100 * row[c][metric]:.1f}"
            if second and second in row[c]:
                cell += f" / {100 * row[c][second]:.0f}"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    legend = f"cells: {metric} (%)" + (f" / {second} (%)" if second else "")
    return "\n".join(lines) + f"\n\n{legend}; n per cell in results.json\n"


def plot_table(table: dict, path: str, *, metric: str = "em", title: str = "") -> bool:
    """Grouped bars (one group per language, one bar per row); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    languages = sorted({lang for row in table.values() for lang in row if lang != "avg"})
    cols = languages + ["avg"]
    rows = list(table)
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(cols) + 2), 3.5))
    for j, name in enumerate(rows):
        values = [100 * table[name].get(c, {}).get(metric, 0.0) for c in cols]
        ax.bar([i + j * width for i in range(len(cols))], values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cols))], cols)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def write_run(out_dir: str, records: Sequence[dict], extra: dict | None = None, *,
              second: str | None = "language_ok", row_key: str = "strategy") -> dict:
    os.makedirs(out_dir, exist_ok=True)
    keys = ("em",) + ((second,) if second else ())
    rows = [dict(r, strategy=r[row_key]) for r in records]
    table = summarise(rows, keys=keys)
    fileio.write_jsonl(os.path.join(out_dir, "records.jsonl"), records)
    result = {"table": table, **(extra or {})}
    fileio.write_json(os.path.join(out_dir, "results.json"), result)
    fileio.write_text(os.path.join(out_dir, "table.md"),
                      markdown_table(table, second=second, row_label=row_key))
    result["plot"] = plot_table(table, os.path.join(out_dir, "table.png"))
    return result
