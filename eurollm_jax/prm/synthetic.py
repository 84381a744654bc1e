"""The synthetic multilingual multi-step arithmetic experiment (PRM best-of-N vs voting).

Task: "Start with 3. Add 4. Subtract 2. Add 5." in several languages (en, de, fr, es, sw:
the question and step wording change, the digits do not); a solution has one line per
operation ("3 plus 4 is 7.", "7 minus 2 is 5.", ...) and an answer line ("The answer is
10."). The correct path stays within 0..9, so checking a step is a small lookup a tiny
model can learn.

Step errors: with probability ``p_error`` a step's result is off by one (+1 with
probability 0.7, -1 otherwise) and later steps continue from the wrong value. Errors are
systematic on purpose: the same one-step slip leads many samples to the same wrong answer,
which is where majority voting fails and a step verifier helps (with independent, scattered
errors voting is already near perfect). Labels follow Math-Shepherd: a step is "+" when it
and every step before it are correct.

``run_experiment(workdir)``:

1. trains a tiny byte-level generator (the trainer, SFT path, loss on the solution) on
   solutions with ``generator_error`` step errors;
2. trains a PRM (``prm.train``; started from the generator's params, loss at the step tags)
   on independently drawn labelled solutions;
3. samples N solutions per held-out question (temperature 0.7, per-row seeds), scores them
   with the PRM and reports the accuracy of PRM best-of-N, majority vote and PRM-weighted
   vote per language and on average, as a function of N (``best_of_n.write_report``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Sequence

import numpy as np

from eurollm_jax.fileio import write_json, write_jsonl
from eurollm_jax.prm.benchmarks import EvalQuestion
from eurollm_jax.prm.data import StepSolution

LANGUAGES = ("en", "de", "fr", "es", "sw")
# start, add, subtract, "a plus x is r", "a minus x is r", answer
TEMPLATES = {
    "en": ("Start with {a}.", "Add {x}.", "Subtract {x}.", "{a} plus {x} is {r}.",
           "{a} minus {x} is {r}.", "The answer is {r}."),
    "de": ("Beginne mit {a}.", "Addiere {x}.", "Subtrahiere {x}.", "{a} plus {x} ist {r}.",
           "{a} minus {x} ist {r}.", "Die Antwort lautet {r}."),
    "fr": ("Commence par {a}.", "Ajoute {x}.", "Retire {x}.", "{a} plus {x} font {r}.",
           "{a} moins {x} font {r}.", "La réponse est {r}."),
    "es": ("Empieza con {a}.", "Suma {x}.", "Resta {x}.", "{a} más {x} son {r}.",
           "{a} menos {x} son {r}.", "La respuesta es {r}."),
    "sw": ("Anza na {a}.", "Ongeza {x}.", "Toa {x}.", "{a} jumlisha {x} ni {r}.",
           "{a} toa {x} ni {r}.", "Jibu ni {r}."),
}


@dataclasses.dataclass(frozen=True)
class Problem:
    language: str
    start: int
    ops: tuple[tuple[str, int], ...]  # ("+" | "-", operand)

    @property
    def question(self) -> str:
        t = TEMPLATES[self.language]
        parts = [t[0].format(a=self.start)]
        parts += [(t[1] if op == "+" else t[2]).format(x=x) for op, x in self.ops]
        return " ".join(parts)

    @property
    def answer(self) -> int:
        v = self.start
        for op, x in self.ops:
            v = v + x if op == "+" else v - x
        return v


def make_problem(rng: np.random.Generator, language: str, min_ops: int = 2,
                 max_ops: int = 4) -> Problem:
    a = v = int(rng.integers(0, 10))
    ops = []
    for _ in range(int(rng.integers(min_ops, max_ops + 1))):
        can_add, can_sub = v < 9, v > 0
        op = "+" if (can_add and (not can_sub or rng.random() < 0.5)) else "-"
        x = int(rng.integers(1, (9 - v if op == "+" else v) + 1))
        v = v + x if op == "+" else v - x
        ops.append((op, x))
    return Problem(language, a, tuple(ops))


def solve(problem: Problem, rng: np.random.Generator, p_error: float,
          ) -> tuple[list[str], list[bool], int]:
    """(solution lines, Math-Shepherd labels per line, final value) with step errors."""
    t = TEMPLATES[problem.language]
    v, ok, lines, labels = problem.start, True, [], []
    for op, x in problem.ops:
        r = v + x if op == "+" else v - x
        if rng.random() < p_error:
            r = r + 1 if (rng.random() < 0.7 or r == 0) else r - 1
            ok = False
        lines.append((t[3] if op == "+" else t[4]).format(a=v, x=x, r=r))
        labels.append(ok)
        v = r
    lines.append(t[5].format(r=v))
    labels.append(ok)
    return lines, labels, v


def problems(n_per_language: int, languages: Sequence[str], seed: int) -> list[Problem]:
    rng = np.random.default_rng(seed)
    return [make_problem(rng, lang) for _ in range(n_per_language) for lang in languages]


def generator_records(tokenizer, probs: Sequence[Problem], p_error: float, seed: int,
                      ) -> list[dict]:
    """Pre-rendered SFT records: BOS question newline solution EOS, loss on the solution."""
    rng = np.random.default_rng(seed)
    out = []
    for p in probs:
        lines, _, _ = solve(p, rng, p_error)
        prompt = [tokenizer.bos_id] + tokenizer.encode(p.question + "\n", add_bos=False)
        body = tokenizer.encode("\n".join(lines), add_bos=False) + [tokenizer.eos_id]
        out.append({"tokens": prompt + body, "loss_mask": [0] * len(prompt) + [1] * len(body),
                    "source": f"{p.language}/gen", "language": p.language})
    return out


def labelled_solutions(probs: Sequence[Problem], p_error: float, seed: int,
                       ) -> list[StepSolution]:
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(probs):
        lines, labels, _ = solve(p, rng, p_error)
        out.append(StepSolution(p.question, tuple(lines), tuple(labels), p.language,
                                str(p.answer), f"synthetic_{i}"))
    return out


def steps_records(solutions: Sequence[StepSolution]) -> list[dict]:
    """The plain ``steps`` JSON-lines form of ``prm.data``."""
    return [{"question": s.question, "steps": list(s.steps),
             "labels": ["+" if g else "-" for g in s.labels], "language": s.language,
             "answer": s.answer, "id": s.id} for s in solutions]


def eval_questions(probs: Sequence[Problem]) -> list[EvalQuestion]:
    return [EvalQuestion(p.question, str(p.answer), p.language, f"synthetic_eval_{i}")
            for i, p in enumerate(probs)]


# ------------------------------------------------------------------ the experiment
@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    languages: tuple[str, ...] = LANGUAGES
    generator_problems: int = 600  # per language
    prm_problems: int = 600  # per language
    eval_problems: int = 24  # per language
    generator_error: float = 0.35
    prm_error: float = 0.35
    generator_steps: int = 400
    prm_steps: int = 400
    batch_size: int = 16  # generator rows per step
    prm_batch_size: int = 32  # PRM rows per step (each row packs 1-3 labelled prefixes)
    seq_len: int = 192  # training rows; the model holds 256 positions
    max_new_tokens: int = 128
    n: int = 16
    temperature: float = 0.7
    aggregate: str = "min"
    loss: str = "two_way"
    d_model: int = 64
    num_layers: int = 3
    generator_lr: float = 3e-3
    prm_lr: float = 1e-3
    seed: int = 0


def model_config(exp: ExperimentConfig, steps: int, lr: float, batch_size: int):
    from configs.base import base_config

    config = base_config("tiny", vocab_size=261, d_model=exp.d_model, num_layers=exp.num_layers,
                         num_heads=4, num_kv_heads=2, head_dim=exp.d_model // 4,
                         ffn_dim=exp.d_model * 3, max_seq_len=256,
                         compute_dtype="float32", param_dtype="float32")
    t = config.train
    t.steps, t.batch_size, t.seq_len, t.log_every = steps, batch_size, exp.seq_len, 25
    config.optimizer.lr = lr
    config.optimizer.warmup_steps = 20
    config.optimizer.schedule = "cosine"
    config.optimizer.weight_decay = 0.0
    config.checkpoint.every = 0
    config.checkpoint.async_save = False
    config.data.source = "sft"
    config.data.eval_fraction = 0.0
    config.eval.every = 0
    config.seed = exp.seed
    return config


def run_experiment(workdir: str, exp: ExperimentConfig = ExperimentConfig()) -> dict:
    """Train the generator and the PRM, run best-of-N; returns the report (module doc)."""
    from eurollm_jax.checkpoint import load_params
    from eurollm_jax.inference import Engine
    from eurollm_jax.prm.best_of_n import (
        accuracy_table,
        sample_solutions,
        score_samples,
        write_report,
    )
    from eurollm_jax.prm.scoring import PRMScorer
    from eurollm_jax.prm.train import train_prm
    from eurollm_jax.tokenizer import ByteTokenizer
    from eurollm_jax.train import train

    tok = ByteTokenizer()
    langs = tuple(exp.languages)
    os.makedirs(workdir, exist_ok=True)
    # 1. the generator
    gen_dir = os.path.join(workdir, "generator")
    gen_file = os.path.join(workdir, "generator_records.jsonl")
    write_jsonl(gen_file, generator_records(
        tok, problems(exp.generator_problems, langs, exp.seed + 1), exp.generator_error,
        exp.seed + 2))
    gen_cfg = model_config(exp, exp.generator_steps, exp.generator_lr, exp.batch_size)
    gen_cfg.data.sft_file = gen_file
    if not os.path.isdir(os.path.join(gen_dir, "params")):
        train(gen_cfg, gen_dir)
    # 2. the PRM, from the generator's params
    prm_dir = os.path.join(workdir, "prm")
    prm_file = os.path.join(workdir, "prm_solutions.jsonl")
    write_jsonl(prm_file, steps_records(labelled_solutions(
        problems(exp.prm_problems, langs, exp.seed + 3), exp.prm_error, exp.seed + 4)))
    import ml_collections

    prm_cfg = model_config(exp, exp.prm_steps, exp.prm_lr, exp.prm_batch_size)
    prm_cfg.train.init_params = os.path.join(gen_dir, "params")
    prm_cfg.prm = ml_collections.ConfigDict({
        "setup": "multi", "loss": exp.loss, "aggregate": exp.aggregate, "train_data": prm_file,
        "train_languages": langs})
    if not os.path.isdir(os.path.join(prm_dir, "params")):
        train_prm(prm_cfg, prm_dir)
    # 3. best-of-N on held-out questions
    questions = eval_questions(problems(exp.eval_problems, langs, exp.seed + 5))
    generator = Engine(load_params(os.path.join(gen_dir, "params")), tok)
    samples = sample_solutions(generator, tok, questions, exp.n, temperature=exp.temperature,
                               max_new_tokens=exp.max_new_tokens, seed=exp.seed + 6)
    scorer = PRMScorer(load_params(os.path.join(prm_dir, "params")), tok)
    score_samples(scorer, questions, samples, exp.aggregate)
    table = accuracy_table(questions, samples)
    step_acc = _step_accuracy(questions, samples)
    report = {"config": dataclasses.asdict(exp), "prm_step_accuracy": step_acc,
              "sample_accuracy": _sample_accuracy(questions, samples)}
    files = write_report(os.path.join(workdir, "report"), table, report)
    with open(os.path.join(workdir, "report", "samples.jsonl"), "w", encoding="utf-8") as f:
        for q, row in zip(questions, samples):
            for s in row:
                f.write(json.dumps({"language": q.language, "question": q.question,
                                    "gold": q.answer, "text": s.text, "answer": s.answer,
                                    "correct": s.correct, "step_probs": s.step_probs},
                                   ensure_ascii=False) + "\n")
    report.update(accuracy=table, files=files)
    write_json(os.path.join(workdir, "report", "summary.json"),
               {k: v for k, v in report.items() if k != "accuracy"})
    return report


OP_WORDS = {t[i].split()[0].lower(): "+-"[i - 1] for t in TEMPLATES.values() for i in (1, 2)}


def check_steps(question: str, steps: Sequence[str]) -> list[bool]:
    """Math-Shepherd labels of a solution to a synthetic question, by exact checking."""
    sentences = [s.strip() for s in question.split(".") if s.strip()]
    value = int(re.findall(r"\d+", sentences[0])[0])
    ops = [(OP_WORDS[s.split()[0].lower()], int(re.findall(r"\d+", s)[0]))
           for s in sentences[1:]]
    labels, ok = [], True
    for k, line in enumerate(steps):
        found = [int(x) for x in re.findall(r"\d+", line)]
        if k < len(ops):
            op, x = ops[k]
            good = len(found) == 3 and found[0] == value and found[1] == x and \
                found[2] == (value + x if op == "+" else value - x)
            value = found[-1] if found else value
        else:
            good = k == len(ops) and len(found) == 1 and found[0] == value
        ok = ok and good
        labels.append(ok)
    return labels


def _step_accuracy(questions, samples) -> dict:
    """Per language: how often the PRM's p_k > 0.5 agrees with exact step checking."""
    out = {}
    for q, row in zip(questions, samples):
        for s in row:
            labels = check_steps(q.question, s.steps) if s.steps else None
            if labels is None or len(labels) != len(s.step_probs):
                continue
            hits = out.setdefault(q.language, [0, 0])
            hits[0] += sum((p > 0.5) == g for p, g in zip(s.step_probs, labels))
            hits[1] += len(labels)
    return {lang: 100.0 * h / max(n, 1) for lang, (h, n) in sorted(out.items())}


def _sample_accuracy(questions, samples) -> dict:
    out = {}
    for q, row in zip(questions, samples):
        c = out.setdefault(q.language, [0, 0])
        c[0] += sum(s.correct for s in row)
        c[1] += len(row)
    return {lang: 100.0 * h / n for lang, (h, n) in sorted(out.items())}
