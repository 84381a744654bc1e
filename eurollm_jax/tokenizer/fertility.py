"""Fertility report: tokens per word and per character by language, tokenizers side by side.

Fertility = tokens / words, words counted by whitespace splitting (``str.split``), tokens
without BOS/EOS. Lower is better; EuroLLM's aim is a fair, similar fertility across languages.
The report is a Markdown table, a JSON file and a PNG bar chart (matplotlib, Agg backend).

    python -m eurollm_jax.tokenizer.fertility --heldout heldout.jsonl \\
        --tokenizer a=path/a.model --tokenizer b=path/b.model --output_dir report/

Held-out inputs are any documents ``eurollm_jax.documents`` reads (``heldout_texts``).
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Mapping, Sequence

from eurollm_jax.documents import ReaderConfig, iter_documents
from eurollm_jax.fileio import write_json, write_text
from eurollm_jax.tokenizer.tokenizer import Tokenizer


def named_paths(specs: Iterable[str]) -> dict[str, str]:
    """``NAME=PATH`` specs as ``{name: path}``; a bare ``PATH`` is named by its file name."""
    out = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if path:
            out[name] = path
        else:
            out[os.path.basename(spec)] = spec
    return out


def texts_by_language(
    records: Iterable[Mapping], text_field: str = "text", lang_field: str = "lang"
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        text = r.get(text_field)
        if isinstance(text, str) and text:
            out.setdefault(str(r.get(lang_field, "unknown")), []).append(text)
    return dict(sorted(out.items()))


def heldout_texts(specs: Iterable[str], config: ReaderConfig | None = None
                  ) -> dict[str, list[str]]:
    """``texts_by_language`` of document inputs (JSONL plain/.gz/.zst, Parquet, ``tfds:``);
    records without a language count as ``"unknown"``, bad records are skipped."""
    config = config or ReaderConfig(default_lang="unknown")
    return texts_by_language({"text": d.text, "lang": d.lang}
                             for spec in specs for d in iter_documents(spec, config))


def fertility(tokenizer: Tokenizer, texts: Sequence[str]) -> dict:
    """Counts and ratios for one language's texts."""
    ids = tokenizer.encode_batch(list(texts), add_bos=False, add_eos=False)
    tokens = sum(len(x) for x in ids)
    words = sum(len(t.split()) for t in texts)
    chars = sum(len(t) for t in texts)
    return {
        "docs": len(texts),
        "words": words,
        "chars": chars,
        "tokens": tokens,
        "tokens_per_word": tokens / max(words, 1),
        "tokens_per_char": tokens / max(chars, 1),
    }


def fertility_table(
    tokenizers: Mapping[str, Tokenizer], texts: Mapping[str, Sequence[str]]
) -> list[dict]:
    """One row per language (plus an ``ALL`` row): ``{"lang", <name>: fertility dict, ...}``."""
    rows = []
    for lang, lang_texts in texts.items():
        row = {"lang": lang}
        for name, tok in tokenizers.items():
            row[name] = fertility(tok, lang_texts)
        rows.append(row)
    total = {"lang": "ALL"}
    for name in tokenizers:
        agg = {k: sum(r[name][k] for r in rows) for k in ("docs", "words", "chars", "tokens")}
        agg["tokens_per_word"] = agg["tokens"] / max(agg["words"], 1)
        agg["tokens_per_char"] = agg["tokens"] / max(agg["chars"], 1)
        # Fairness: the spread of per-language fertility (max / min over languages).
        per_lang = [r[name]["tokens_per_word"] for r in rows if r[name]["words"]]
        agg["max_over_min_tokens_per_word"] = max(per_lang) / min(per_lang) if per_lang else 0.0
        total[name] = agg
    return rows + [total]


def format_table(rows: Sequence[dict], names: Sequence[str]) -> str:
    """Markdown table: words, chars, then tokens/word and tokens/char per tokenizer."""
    head = ["lang", "words", "chars"]
    for n in names:
        head += [f"{n} tok/word", f"{n} tok/char"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        first = r[names[0]]
        cells = [r["lang"], str(first["words"]), str(first["chars"])]
        for n in names:
            cells += [f"{r[n]['tokens_per_word']:.3f}", f"{r[n]['tokens_per_char']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if rows and rows[-1]["lang"] == "ALL":
        spread = ", ".join(
            f"{n}: {rows[-1][n].get('max_over_min_tokens_per_word', 0):.2f}" for n in names
        )
        lines.append("")
        lines.append(f"max/min tokens-per-word over languages (1.0 = perfectly even): {spread}")
    return "\n".join(lines)


def plot_fertility(rows: Sequence[dict], names: Sequence[str], path: str) -> str:
    """Grouped bar chart of tokens per word by language, one bar per tokenizer."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    langs = [r["lang"] for r in rows if r["lang"] != "ALL"]
    data = [[r[n]["tokens_per_word"] for r in rows if r["lang"] != "ALL"] for n in names]
    x = np.arange(len(langs))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(langs) + 2), 4.5))
    for i, (name, values) in enumerate(zip(names, data)):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(langs)
    ax.set_ylabel("tokens per word")
    ax.set_title("Tokenizer fertility by language (held-out text)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fertility_report(
    tokenizers: Mapping[str, Tokenizer],
    texts: Mapping[str, Sequence[str]],
    output_dir: str | None = None,
) -> tuple[list[dict], str]:
    """Compute the table; with ``output_dir`` write fertility.{md,json,png}. Returns (rows, md)."""
    names = list(tokenizers)
    rows = fertility_table(tokenizers, texts)
    table = format_table(rows, names)
    if output_dir:
        write_text(os.path.join(output_dir, "fertility.md"), table + "\n")
        write_json(os.path.join(output_dir, "fertility.json"), rows)
        plot_fertility(rows, names, os.path.join(output_dir, "fertility.png"))
    return rows, table


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heldout", required=True, nargs="+",
                        help="documents with text and lang (JSONL, .gz, .zst, Parquet, tfds:)")
    parser.add_argument("--tokenizer", required=True, action="append",
                        help="NAME=PATH of a SentencePiece model; repeat to compare")
    parser.add_argument("--output_dir", default=None)
    args = parser.parse_args(argv)
    toks = {name: Tokenizer.load(path) for name, path in named_paths(args.tokenizer).items()}
    _, table = fertility_report(toks, heldout_texts(args.heldout), args.output_dir)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
