"""PRM training through the trainer's SFT path, and the PRM job config.

A PRM job config is a trainer job config (``configs/base.py`` sections) plus a ``prm``
section (``PRMSection``). ``train_prm(config, workdir)``:

1. loads the step-labelled solutions of ``prm.train_data`` (``prm.data``; Math-Shepherd,
   PRM800K or the plain steps form), keeps ``prm.train_languages`` (all when empty);
2. renders them to pre-rendered SFT records (``render.training_records``: one per labelled
   step, the loss on the label token right after the step tag, nowhere else), one pipeline
   source ``"<language>/prm"`` per language (so ``data.mixture`` / ``data.weighting`` weight
   languages), written to ``WORKDIR/prm_data/records.jsonl`` with a ``counts.json`` (the
   loader's per-language counts and malformed reasons, the record counts);
3. trains with ``eurollm_jax.train.Trainer`` on ``data.source=sft`` (byte-level in-memory
   SFT, ``tokenizer.ByteTokenizer``), the loss chosen by ``prm.loss``:

   - ``"two_way"`` (default): cross-entropy of the softmax over the two label tokens only,
     ``-log softmax(logits[tag, {+, -}])[label]``: exactly the quantity read at scoring
     (``train.StepOptions.vocab_subset``);
   - ``"full"``: the trainer's full-vocabulary next-token cross-entropy at the same
     positions (the label competes with every token; scoring renormalises over {+, -}).

Rerunning with the same workdir resumes the trainer (the records are rewritten identically).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import ml_collections

from eurollm_jax.fileio import write_json, write_jsonl
from eurollm_jax.prm.data import FORMATS, MATH_SHEPHERD_TAG, NEUTRAL, load_step_solutions
from eurollm_jax.prm.render import StepFormat, label_ids, training_records
from eurollm_jax.prm.scoring import AGGREGATIONS
from eurollm_jax.schema import ConfigError, Section, plain
from eurollm_jax.tokenizer import ByteTokenizer

log = logging.getLogger(__name__)
LOSSES = ("two_way", "full")
SETUPS = ("mono", "cross", "multi")


@dataclasses.dataclass(frozen=True)
class PRMSection(Section):
    setup: str = "multi"  # mono (train = test language) | cross (train one, test all) | multi
    loss: str = "two_way"  # two_way: CE over {+, -} | full: full-vocabulary CE (module doc)
    format: StepFormat = StepFormat()
    aggregate: str = "min"  # solution score: min | last | mean of the step probabilities
    train_data: str = ""  # step-labelled JSON lines (files, globs, comma-separated)
    data_format: str = "auto"  # auto | math_shepherd | prm800k | steps
    neutral: str = "positive"  # PRM800K rating 0: positive | negative | drop
    default_language: str = "en"  # of records without a "language" field
    train_languages: tuple[str, ...] = ()  # (): every language of train_data
    test_languages: tuple[str, ...] = ()  # best-of-N / evaluation languages (): all

    def check(self, path):
        self.require(path, self.setup in SETUPS, "setup", f"{self.setup!r}: choose mono, cross "
                     "or multi")
        self.require(path, self.loss in LOSSES, "loss", f"{self.loss!r}: choose two_way or full")
        self.require(path, self.aggregate in AGGREGATIONS, "aggregate",
                     f"{self.aggregate!r}: choose one of {', '.join(AGGREGATIONS)}")
        self.require(path, self.data_format in FORMATS, "data_format",
                     f"{self.data_format!r}: choose one of {', '.join(FORMATS)}")
        self.require(path, self.neutral in NEUTRAL, "neutral",
                     f"{self.neutral!r}: choose one of {', '.join(NEUTRAL)}")
        if self.setup in ("mono", "cross"):
            self.require(path, len(self.train_languages) == 1, "train_languages",
                         f"setup {self.setup!r} trains on one language: give exactly one "
                         f"(got {list(self.train_languages)})")
        if self.setup == "mono" and self.test_languages:
            self.require(path, tuple(self.test_languages) == tuple(self.train_languages),
                         "test_languages", "setup 'mono' tests on its training language only")


def split_config(config) -> tuple[PRMSection, ml_collections.ConfigDict]:
    """(the validated ``prm`` section, the trainer's part of the config)."""
    values = plain(config)
    if "prm" not in values:
        raise ConfigError("prm: the job config has no prm section (see configs/prm_multi.py)")
    section = PRMSection.from_mapping(values.pop("prm"), "prm")
    return section, ml_collections.ConfigDict(values)


def prepare_records(prm: PRMSection, tokenizer, out_dir: str, max_len: int) -> dict:
    """Render the training data to ``out_dir/records.jsonl``; returns the counts."""
    if not prm.train_data:
        raise ConfigError("prm.train_data: give the step-labelled training files")
    solutions, report = load_step_solutions(
        prm.train_data, prm.data_format, language=prm.default_language,
        languages=prm.train_languages, neutral=prm.neutral, tag=MATH_SHEPHERD_TAG)
    if not solutions:
        raise ConfigError(f"prm.train_data {prm.train_data!r}: no usable solution "
                          f"(report: {report.to_dict()})")
    label_ids(tokenizer, prm.format)  # fail early on a multi-token label
    records, dropped = [], 0
    per_language: dict = {}
    for sol in solutions:
        recs = training_records(tokenizer, sol.question, sol.steps, sol.labels, prm.format,
                                source=f"{sol.language}/prm", max_len=max_len,
                                meta={"language": sol.language, "id": sol.id})
        dropped += len([x for x in sol.labels if x is not None]) - len(recs)
        per_language[sol.language] = per_language.get(sol.language, 0) + len(recs)
        records += recs
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "records.jsonl")
    write_jsonl(path, records)
    counts = {"load": report.to_dict(), "records": per_language,
              "steps_over_max_len": dropped, "records_file": path}
    write_json(os.path.join(out_dir, "counts.json"), counts)
    return counts



def make_trainer(config, workdir: str, *, devices=None):
    """(Trainer on the rendered records with the chosen loss, prm section, counts)."""
    from eurollm_jax.train import Trainer

    prm, trainer_config = split_config(config)
    if trainer_config.data.source != "sft":
        raise ConfigError(f"data.source={trainer_config.data.source!r}: the PRM trains on the "
                          "byte-level in-memory SFT path (data.source='sft'); for a "
                          "SentencePiece tokenizer tokenize prm_data/records.jsonl with "
                          "`python -m launch.tokenize` (kind sft) and use data.source=pipeline")
    tokenizer = ByteTokenizer()
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    counts = prepare_records(prm, tokenizer, os.path.join(workdir, "prm_data"),
                             int(trainer_config.train.seq_len))
    trainer_config.data.sft_file = counts["records_file"]
    trainer = Trainer(trainer_config, workdir, devices=devices)
    if prm.loss == "two_way":
        opts = dataclasses.replace(trainer.job.step_opts,
                                   vocab_subset=tuple(label_ids(tokenizer, prm.format)))
        trainer.job = dataclasses.replace(trainer.job, step_opts=opts)
        trainer.train_fn = trainer.job.jitted_train_step()
        if trainer.eval_fn is not None:
            trainer.eval_fn = trainer.job.jitted_eval_step()
    return trainer, prm, counts


def train_prm(config, workdir: str, *, devices=None):
    """Render the data and train (or resume); returns (TrainResult, counts)."""
    trainer, _, counts = make_trainer(config, workdir, devices=devices)
    log.info("PRM records: %s", counts["records"])
    return trainer.run(), counts
