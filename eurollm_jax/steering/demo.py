"""The ExpertSteer demo pair: two tiny byte-level checkpoints of different widths trained on
the offline demo corpus, and the labelled files the experiment reads.

``prepare_demo(workdir, expert_config, target_config)``:

1. builds the demo corpus for ``languages`` (``data.demo_corpus.build``: real text shipped
   in installed packages) into ``workdir/corpus``: ``train.jsonl`` / ``heldout.jsonl``
   records with ``text`` and ``lang``;
2. writes one text file per language of the training split (``corpus/text/<lang>.txt``,
   documents separated by blank lines: the trainer's ``text`` source, byte-level);
3. trains the expert and the target (``eurollm_jax.train.train``; resumable) with
   ``data.text_files`` pointed at those files; the trainer exports their params to
   ``workdir/expert/params`` and ``workdir/target/params``.

The experiment then uses ``train.jsonl`` as its probe file and ``heldout.jsonl`` for the
evaluation tasks (``configs/steer_tiny.py``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from eurollm_jax.fileio import read_jsonl, write_text

DEMO_LANGUAGES = ("en", "de", "fr", "es")


@dataclasses.dataclass(frozen=True)
class DemoPair:
    expert_params: str
    target_params: str
    probe_file: str
    eval_file: str


def write_language_texts(records: Sequence[dict], out_dir: str) -> list[str]:
    """``<out_dir>/<lang>.txt`` per language (documents separated by blank lines)."""
    by_lang: dict[str, list[str]] = {}
    for r in records:
        by_lang.setdefault(r["lang"], []).append(r["text"].strip())
    paths = []
    for lang, texts in sorted(by_lang.items()):
        path = os.path.join(out_dir, f"{lang}.txt")
        write_text(path, "\n\n".join(t for t in texts if t) + "\n")
        paths.append(path)
    return paths


def prepare_demo(
    workdir: str,
    expert_config,
    target_config,
    *,
    languages: Sequence[str] = DEMO_LANGUAGES,
    heldout_fraction: float = 0.2,
    gettext_chars_per_language: int = 60_000,
    steps: int | None = None,
    progress=print,
) -> DemoPair:
    """Corpus, text files and the two trained checkpoints (module docstring)."""
    from eurollm_jax.data import demo_corpus
    from eurollm_jax.train import train

    workdir = os.path.abspath(workdir)
    corpus = os.path.join(workdir, "corpus")
    probe_file = os.path.join(corpus, "train.jsonl")
    eval_file = os.path.join(corpus, "heldout.jsonl")
    if not (os.path.exists(probe_file) and os.path.exists(eval_file)):
        demo_corpus.build(corpus, languages=tuple(languages), heldout_fraction=heldout_fraction,
                          gettext_chars_per_language=gettext_chars_per_language)
    text_files = write_language_texts(read_jsonl(probe_file), os.path.join(corpus, "text"))
    out = {}
    for name, config in (("expert", expert_config), ("target", target_config)):
        config = config.copy_and_resolve_references() if hasattr(config, "copy_and_resolve_references") else config
        config.data.text_files = tuple(text_files)
        if steps is not None:
            config.train.steps = int(steps)
        run_dir = os.path.join(workdir, name)
        params = os.path.join(run_dir, "params")
        if not os.path.exists(os.path.join(params, "model_config.json")):
            progress(f"[demo] training the {name} (d_model {config.model.d_model}, "
                     f"{config.model.num_layers} layers, {config.train.steps} steps)")
            train(config, run_dir)
        if not os.path.exists(os.path.join(params, "model_config.json")):
            raise RuntimeError(f"training the {name} wrote no params under {params}")
        out[name] = params
    return DemoPair(out["expert"], out["target"], probe_file, eval_file)
