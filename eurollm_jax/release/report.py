"""A run report: Markdown sections, tables and PNG charts, all computed from run outputs.

Nothing here invents a number: every table and chart is built from files the run wrote
(``metrics.jsonl``, filter and fertility reports, evaluation results) or values passed in.
"""

from __future__ import annotations

import os
import shutil

from eurollm_jax.fileio import read_jsonl, write_text
from typing import Iterable, Mapping, Sequence


def read_metrics(path: str) -> list[dict]:
    """Rows of a trainer ``metrics.jsonl`` (one JSON object per logged step)."""
    return read_jsonl(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(rows: Sequence[Mapping], path: str, *, title: str = "training loss",
                    marker_step: int | None = None, marker_label: str = "") -> str:
    """Training loss (and eval loss where logged) against step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    if train:
        ax.plot(*zip(*train), label="train loss")
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    if evals:
        ax.plot(*zip(*evals), "o-", label="held-out loss")
    if marker_step is not None:
        ax.axvline(marker_step, color="grey", linestyle="--", label=marker_label or None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(values: Mapping[str, float], path: str, *, title: str, ylabel: str) -> str:
    plt = _pyplot()
    keys = list(values)
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(keys) + 2), 3.5))
    ax.bar(keys, [values[k] for k in keys])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=90 if len(keys) > 12 else 0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class RunReport:
    """Collects sections and writes ``report.md`` with its images next to it."""

    def __init__(self, directory: str, title: str):
        self.directory = directory
        self.title = title
        self.sections: list[str] = []
        os.makedirs(directory, exist_ok=True)

    def add(self, heading: str, body: str = "") -> None:
        self.sections.append(f"## {heading}\n\n{body.strip()}\n")

    def add_table(self, heading: str, header, rows, note: str = "") -> None:
        self.add(heading, (note + "\n\n" if note else "") + markdown_table(header, rows))

    def image(self, source_path: str, alt: str) -> str:
        """Copy an image into the report directory; returns the Markdown to show it."""
        name = os.path.basename(source_path)
        target = os.path.join(self.directory, name)
        if os.path.abspath(source_path) != os.path.abspath(target):
            shutil.copyfile(source_path, target)
        return f"![{alt}]({name})"

    def write(self) -> str:
        path = os.path.join(self.directory, "report.md")
        write_text(path, f"# {self.title}\n\n" + "\n".join(self.sections))
        return path
