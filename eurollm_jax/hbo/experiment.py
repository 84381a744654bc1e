"""The tiny 8-language HBO experiment: data, reference model, IFD buckets, runs, report.

``run_experiment(out_dir)``:

1. **Data** (``build_data``): the offline demo corpus (``data.demo_corpus``: UDHR, spaCy
   examples, Debian message catalogues) in 8 languages, split into train / held-out
   documents by a stable hash. Each language becomes SFT conversations of two kinds from its
   own text: "Continue: <5 words>" -> the next 6 words, and "Repeat: <6 words>" -> the same
   words (easy given the instruction: low IFD). Subsets get unequal sizes (``SIZES``, 22:1
   between the largest and the smallest, like a real multilingual mix); held-out
   conversations come from the held-out documents only.
2. **Reference model**: the tiny model pre-trained on the languages' training text
   (``data.source=text``), exported; it is the IFD reference and the start of every SFT run.
3. **Buckets**: IFD of every training conversation under the reference (inference scoring,
   cached), 4 equal buckets per language, one SFT file with sources ``<lang>/b<j>``.
4. **Runs**: the same job (``configs/hbo_tiny8.py``) with HBO and the static mixtures
   tau = 1, 3, inf (``RUNS``; any of ``EXTRA_RUNS`` with ``runs=``).
5. **Report**: per-language held-out loss (NLL per response token of the held-out
   conversations) of each run's final params, their mean, the final p_G of HBO, the
   wall-clock time of each run; ``report.json`` and ``report.md`` in ``out_dir``.

``python -m eurollm_jax.hbo.experiment --out=DIR [--steps=N --runs=hbo,tau1,...]``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Sequence

import numpy as np

from eurollm_jax.fileio import read_jsonl, write_json, write_jsonl, write_text

LANGUAGES = ("en", "de", "fr", "es", "it", "pl", "nl", "lv")
SIZES = (360, 240, 160, 100, 64, 40, 24, 16)  # training conversations per language
HELDOUT = 40  # held-out conversations per language
RUNS = {"hbo": dict(mode="hbo"), "tau1": dict(mode="static", tau=1.0),
        "tau3": dict(mode="static", tau=3.0), "tau_inf": dict(mode="static", tau=float("inf"))}
EXTRA_RUNS = {"tau5": dict(mode="static", tau=5.0), "tau10": dict(mode="static", tau=10.0),
              "global_only": dict(mode="global"), "local_only": dict(mode="local")}


def _windows(text: str, rng: np.random.Generator) -> list[dict]:
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    out = []
    for i in range(0, max(len(words) - 11, 0), 4):
        if rng.random() < 0.5:
            prompt, answer = "Continue: " + " ".join(words[i:i + 5]), " ".join(words[i + 5:i + 11])
        else:
            prompt, answer = "Repeat: " + " ".join(words[i:i + 6]), " ".join(words[i:i + 6])
        out.append({"messages": [{"role": "user", "content": prompt},
                                 {"role": "assistant", "content": answer}]})
    return out


def _fits(tokenizer, record, seq_len: int) -> bool:
    from eurollm_jax.data.sft import render_sft_record

    return len(render_sft_record(tokenizer, record)[0]) <= seq_len


def build_data(out_dir: str, *, languages=LANGUAGES, sizes=SIZES, seq_len: int = 128,
               seed: int = 0) -> dict:
    """Pre-training text files, SFT conversations (source = language) and held-out ones."""
    from eurollm_jax.data.demo_corpus import collect_documents, split_heldout
    from eurollm_jax.tokenizer import ByteTokenizer

    if len(sizes) != len(languages):
        raise ValueError(f"{len(languages)} languages need {len(languages)} sizes, got {sizes}")
    docs = collect_documents(languages, sources=("udhr", "spacy", "gettext"),
                             gettext_chars_per_language=20_000)
    train_docs, held_docs = split_heldout(docs, 0.15)
    tok = ByteTokenizer()
    rng = np.random.default_rng(seed)
    text_dir = os.path.join(out_dir, "pretrain")
    os.makedirs(text_dir, exist_ok=True)
    train, held, counts = [], [], {}
    for lang, size in zip(languages, sizes):
        texts = [d["text"] for d in train_docs if d["lang"] == lang]
        write_text(os.path.join(text_dir, f"{lang}.txt"), "\n\n".join(texts) + "\n")
        convs = [c for t in texts for c in _windows(t, rng) if _fits(tok, c, seq_len)]
        if len(convs) < size:
            raise ValueError(f"{lang}: only {len(convs)} conversations for size {size}")
        pick = sorted(rng.choice(len(convs), size, replace=False))
        train += [dict(convs[i], source=lang) for i in pick]
        hconvs = [c for d in held_docs if d["lang"] == lang for c in _windows(d["text"], rng)
                  if _fits(tok, c, seq_len)]
        hpick = sorted(rng.choice(len(hconvs), min(HELDOUT, len(hconvs)), replace=False))
        held += [dict(hconvs[i], source=lang) for i in hpick]
        counts[lang] = {"train": size, "heldout": len(hpick)}
    paths = {"text_files": os.path.join(text_dir, "*.txt"),
             "sft": os.path.join(out_dir, "sft_by_language.jsonl"),
             "heldout": os.path.join(out_dir, "heldout.jsonl")}
    write_jsonl(paths["sft"], train)
    write_jsonl(paths["heldout"], held)
    write_json(os.path.join(out_dir, "data_counts.json"), counts)
    return paths


def _job_config(steps: int | None = None):
    sys.path.insert(0, _repo_root())
    from configs.hbo_tiny8 import get_config

    config = get_config()
    if steps:
        config.train.steps = int(steps)
        config.optimizer.warmup_steps = max(1, int(steps) // 10)
    return config


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train_reference(out_dir: str, text_files: str, *, steps: int = 300) -> str:
    """Pre-train the tiny model on the languages' text; returns its params directory."""
    from eurollm_jax.hbo.config import split_job_config
    from eurollm_jax.train import train

    config, _ = split_job_config(_job_config())
    config.data.source = "text"
    config.data.text_files = (text_files,)
    config.data.sft_file = ""
    config.train.steps = steps
    config.optimizer.lr = 3e-3
    config.optimizer.warmup_steps = 20
    config.checkpoint.every = 0
    config.checkpoint.export_params = True
    workdir = os.path.join(out_dir, "reference")
    if not os.path.isdir(os.path.join(workdir, "params")):
        train(config, workdir)
    return os.path.join(workdir, "params")


def bucket_data(out_dir: str, sft_file: str, params_dir: str, *, buckets: int = 4) -> str:
    """IFD under the reference, 4 buckets per language: the HBO SFT file."""
    from eurollm_jax.checkpoint import load_params
    from eurollm_jax.hbo.difficulty import write_bucketed_sft
    from eurollm_jax.tokenizer import ByteTokenizer

    path = os.path.join(out_dir, "sft_buckets.jsonl")
    model = load_params(params_dir)
    sizes = write_bucketed_sft(read_jsonl(sft_file), path, tokenizer=ByteTokenizer(), model=model,
                               buckets=buckets, scorer="ifd",
                               cache=os.path.join(out_dir, "ifd_cache.jsonl"),
                               reference=os.path.abspath(params_dir))
    write_json(os.path.join(out_dir, "bucket_sizes.json"), sizes)
    return path


def heldout_losses(trainer, heldout: Sequence[dict]) -> dict[str, float]:
    """Per language: NLL per response token of the held-out conversations (final params)."""
    from eurollm_jax.data.sft import render_sft_record
    from eurollm_jax.hbo.rewards import RewardModel
    from eurollm_jax.tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    model = RewardModel(trainer.job, trainer.settings.train.batch_size)
    by_lang: dict[str, list] = {}
    for r in heldout:
        tokens, mask = render_sft_record(tok, r)
        by_lang.setdefault(r["source"], []).append((np.asarray(tokens), np.asarray(mask)))
    return {lang: model.token_loss(trainer.state["params"], ex)
            for lang, ex in sorted(by_lang.items())}


def run_experiment(out_dir: str, *, steps: int | None = None, runs: Sequence[str] = tuple(RUNS),
                   reference_steps: int = 300) -> dict:
    from eurollm_jax.hbo.run import run

    os.makedirs(out_dir, exist_ok=True)
    paths = build_data(out_dir)
    params_dir = train_reference(out_dir, paths["text_files"], steps=reference_steps)
    sft_file = bucket_data(out_dir, paths["sft"], params_dir)
    heldout = read_jsonl(paths["heldout"])
    os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
    table = {"runs": {}, "languages": list(LANGUAGES), "sizes": dict(zip(LANGUAGES, SIZES))}
    all_runs = dict(RUNS, **EXTRA_RUNS)
    for name in runs:
        if name not in all_runs:
            raise ValueError(f"unknown run {name!r}; choose from {sorted(all_runs)}")
        config = _job_config(steps)
        config.data.sft_file = sft_file
        config.train.init_params = params_dir
        for k, v in all_runs[name].items():
            config.hbo[k] = v
        start = time.perf_counter()
        result, trainer, hook = run(config, os.path.join(out_dir, "runs", name))
        seconds = time.perf_counter() - start
        losses = heldout_losses(trainer, heldout)
        table["runs"][name] = {
            "heldout_loss": losses, "mean": float(np.mean(list(losses.values()))),
            "wall_s": seconds, "reward_s": hook.reward_seconds, "updates": hook.updates,
            "final_p_G": dict(zip(hook.layout.subsets, hook.p_global.tolist())),
            "final_train_loss": result.last_metrics.get("loss"),
        }
    write_json(os.path.join(out_dir, "report.json"), table)
    write_text(os.path.join(out_dir, "report.md"), format_report(table))
    return table


def format_report(table: dict) -> str:
    runs = list(table["runs"])
    langs = table["languages"]
    lines = ["# Tiny 8-language HBO experiment: held-out loss (nats per response token)", "",
             "| language | train size | " + " | ".join(runs) + " |",
             "|---|---|" + "---|" * len(runs)]
    for lang in langs:
        cells = [f"{table['runs'][r]['heldout_loss'][lang]:.4f}" for r in runs]
        lines.append(f"| {lang} | {table['sizes'][lang]} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | | " + " | ".join(f"**{table['runs'][r]['mean']:.4f}**"
                                                 for r in runs) + " |")
    lines += ["", "| run | wall s | reward s | updates | final p_G |", "|---|---|---|---|---|"]
    for r in runs:
        info = table["runs"][r]
        pg = ", ".join(f"{k} {v:.3f}" for k, v in info["final_p_G"].items())
        lines.append(f"| {r} | {info['wall_s']:.1f} | {info['reward_s']:.1f} | "
                     f"{info['updates']} | {pg} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="experiment directory (reused on rerun)")
    parser.add_argument("--steps", type=int, default=None, help="SFT steps per run")
    parser.add_argument("--reference_steps", type=int, default=300)
    parser.add_argument("--runs", default=",".join(RUNS),
                        help=f"comma list of {sorted(dict(RUNS, **EXTRA_RUNS))}")
    args = parser.parse_args(argv)
    table = run_experiment(args.out, steps=args.steps, runs=args.runs.split(","),
                           reference_steps=args.reference_steps)
    print(format_report(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
