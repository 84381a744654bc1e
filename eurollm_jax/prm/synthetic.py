"""The synthetic multilingual multi-step arithmetic experiment (PRM best-of-N vs voting).

Task: "Start with 3. Add 4. Subtract 2. Add 5." in several languages (en, de, fr, es, sw:
the question and step wording change, the digits do not); a solution has one line per
operation in a fixed format per language ("3 plus 4 is 7.", "7 minus 2 is 5.", ...) and an
answer line ("The answer is 10."). Operands are single digits and the correct path stays
within 0..9.

Step labels are local (PRM800K-style per-step ratings): an operation line is ``+`` when its
own arithmetic is right (its first operand is the value the previous line ended on, its
second operand is the question's, its result is their sum / difference); the answer line is
``+`` when it repeats the last value. Checking a step therefore needs only the step's own
numbers (and the question's operand): a small lookup a tiny model can learn. With ``min``
aggregation a solution scores low as soon as one step is wrong. ``check_steps(...,
labels="prefix")`` gives Math-Shepherd's labels (a step is ``+`` when it and every step
before it are right) of the same solutions.

The generator's errors (``GeneratorErrors``): a seeded set of *misremembered facts* (a
fraction of the (operation, a, x) facts, each with a fixed wrong result a +-1 off) that the
generator's training solutions get wrong with probability ``hard_error``, plus rare random
one-off slips on any step. Later steps continue from the written value. On a question
without a misremembered fact the generator is mostly right and majority voting works; on a
question with one, most samples agree on the same wrong answer (a systematic error, as in
real models) and only a verifier of the step itself can pick the minority of correct
samples. The report splits accuracy by that, so the source of any gain is visible.

The PRM trains on independently drawn solutions whose every line is wrong with probability
``prm_error`` (results off by 1 or 2, on every fact alike: the PRM is taught arithmetic,
not the generator's misremembered facts), so labels are balanced.

``run_experiment(workdir)``:

1. trains a tiny byte-level generator (the trainer, SFT path, loss on the solution);
2. trains a PRM (``prm.train``; started from the generator's params, loss at the step tags)
   in ``prm_cycles`` warm-restarted cycles, each a resumable run in its own workdir
   (``prm_cycle_dir``) started from the previous cycle's exported params;
3. measures the PRM's step-verdict accuracy (p_k > 0.5 vs the label) on held-out labelled
   solutions from the PRM's distribution;
4. samples N solutions per held-out question (temperature 0.7, per-row seeds), scores them
   with the PRM and reports the accuracy of PRM best-of-N, majority vote, PRM-weighted vote
   and the oracle per language and on average for every n = 1, 2, 4, ... N
   (``best_of_n.write_report``), with a paired sign test of PRM vs majority over questions.

Every stage writes its result under ``workdir`` before the next starts (the two trainings
resume; finished stages are not redone).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
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
NUMBER = re.compile(r"-?\d+")
Fact = tuple  # (op "+" | "-", a, x)


def _apply(op: str, a: int, x: int) -> int:
    return a + x if op == "+" else a - x


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
            v = _apply(op, v, x)
        return v

    def facts(self) -> list[Fact]:
        """The (op, a, x) of every step of the correct solution."""
        v, out = self.start, []
        for op, x in self.ops:
            out.append((op, v, x))
            v = _apply(op, v, x)
        return out


def make_problem(rng: np.random.Generator, language: str, min_ops: int = 2,
                 max_ops: int = 4) -> Problem:
    a = v = int(rng.integers(0, 10))
    ops = []
    for _ in range(int(rng.integers(min_ops, max_ops + 1))):
        can_add, can_sub = v < 9, v > 0
        op = "+" if (can_add and (not can_sub or rng.random() < 0.5)) else "-"
        x = int(rng.integers(1, (9 - v if op == "+" else v) + 1))
        v = _apply(op, v, x)
        ops.append((op, x))
    return Problem(language, a, tuple(ops))


def all_facts() -> list[Fact]:
    """Every single-digit step whose result stays in 0..9 (90 facts)."""
    return [(op, a, x) for op in "+-" for a in range(10) for x in range(1, 10)
            if 0 <= _apply(op, a, x) <= 9]


@dataclasses.dataclass(frozen=True)
class GeneratorErrors:
    """The generator's training-data errors (module docstring)."""

    misremembered: tuple[tuple[Fact, int], ...] = ()  # (fact, wrong result)
    hard_error: float = 0.0  # P(a misremembered fact is written with its wrong result)
    slip_error: float = 0.0  # P(any other step is off by one)

    @classmethod
    def draw(cls, fraction: float, hard_error: float, slip_error: float,
             seed: int) -> "GeneratorErrors":
        rng = np.random.default_rng(seed)
        facts = all_facts()
        chosen = rng.choice(len(facts), size=int(round(fraction * len(facts))), replace=False)
        wrong = []
        for i in sorted(int(i) for i in chosen):
            op, a, x = facts[i]
            r = _apply(op, a, x)
            delta = 1 if r == 0 else -1 if r == 9 else int(rng.choice([-1, 1]))
            wrong.append(((op, a, x), r + delta))
        return cls(tuple(wrong), float(hard_error), float(slip_error))

    def lookup(self) -> dict:
        return dict(self.misremembered)

    def affects(self, problem: Problem) -> bool:
        """Whether the correct solution of ``problem`` uses a misremembered fact."""
        table = self.lookup()
        return any(f in table for f in problem.facts())


def solve(problem: Problem, rng: np.random.Generator, p_error: float, *,
          errors: GeneratorErrors | None = None, answer_error: float = 0.0,
          deltas: Sequence[int] = (-1, 1)) -> tuple[list[str], list[bool], int]:
    """(solution lines, local labels per line, final value). Each operation line is off by a
    random ``deltas`` with probability ``p_error`` (and a misremembered fact of ``errors``
    gets its wrong result with probability ``errors.hard_error``); the answer line is off with
    probability ``answer_error``. Results never go below 0."""
    t = TEMPLATES[problem.language]
    table = errors.lookup() if errors else {}
    v, lines, labels = problem.start, [], []

    def slip(r):
        d = int(rng.choice(deltas))
        return r - d if r + d < 0 else r + d

    for op, x in problem.ops:
        right = _apply(op, v, x)
        fact = (op, v, x)
        if fact in table and rng.random() < errors.hard_error:
            r = table[fact]
        elif rng.random() < p_error:
            r = slip(right)
        else:
            r = right
        lines.append((t[3] if op == "+" else t[4]).format(a=v, x=x, r=r))
        labels.append(r == right)
        v = r
    r = slip(v) if rng.random() < answer_error else v
    lines.append(t[5].format(r=r))
    labels.append(r == v)
    return lines, labels, r


def problems(n_per_language: int, languages: Sequence[str], seed: int) -> list[Problem]:
    rng = np.random.default_rng(seed)
    return [make_problem(rng, lang) for _ in range(n_per_language) for lang in languages]


def generator_records(tokenizer, probs: Sequence[Problem], errors: GeneratorErrors, seed: int,
                      ) -> list[dict]:
    """Pre-rendered SFT records: BOS question newline solution EOS, loss on the solution."""
    rng = np.random.default_rng(seed)
    out = []
    for p in probs:
        lines, _, _ = solve(p, rng, errors.slip_error, errors=errors)
        prompt = [tokenizer.bos_id] + tokenizer.encode(p.question + "\n", add_bos=False)
        body = tokenizer.encode("\n".join(lines), add_bos=False) + [tokenizer.eos_id]
        out.append({"tokens": prompt + body, "loss_mask": [0] * len(prompt) + [1] * len(body),
                    "source": f"{p.language}/gen", "language": p.language})
    return out


def labelled_solutions(probs: Sequence[Problem], p_error: float, seed: int, *,
                       answer_error: float | None = None,
                       deltas: Sequence[int] = (-2, -1, 1, 2)) -> list[StepSolution]:
    """PRM data: every line wrong with probability ``p_error`` (the answer line with
    ``answer_error``, default the same), local labels."""
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(probs):
        lines, labels, _ = solve(p, rng, p_error, deltas=deltas,
                                 answer_error=p_error if answer_error is None else answer_error)
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


OP_WORDS = {t[i].split()[0].lower(): "+-"[i - 1] for t in TEMPLATES.values() for i in (1, 2)}


def parse_question(question: str) -> tuple[int, list[tuple[str, int]]]:
    sentences = [s.strip() for s in question.split(".") if s.strip()]
    start = int(NUMBER.findall(sentences[0])[0])
    return start, [(OP_WORDS[s.split()[0].lower()], int(NUMBER.findall(s)[0]))
                   for s in sentences[1:]]


def check_steps(question: str, steps: Sequence[str], labels: str = "local") -> list[bool]:
    """Exact labels of a solution to a synthetic question: ``local`` (module docstring) or
    ``prefix`` (Math-Shepherd: a step and every step before it right)."""
    if labels not in ("local", "prefix"):
        raise ValueError(f"labels={labels!r}: choose local or prefix")
    value, ops = parse_question(question)
    out, ok = [], True
    for k, line in enumerate(steps):
        found = [int(x) for x in NUMBER.findall(line)]
        if k < len(ops):
            op, x = ops[k]
            good = len(found) == 3 and found[0] == value and found[1] == x and \
                found[2] == _apply(op, found[0], x)
            value = found[-1] if found else value
        else:
            good = k == len(ops) and len(found) == 1 and found[0] == value
        ok = ok and good
        out.append(ok if labels == "prefix" else good)
    return out


# ------------------------------------------------------------------ statistics
def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips)
    (ties are dropped); small = method A beats B on more questions than chance explains."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2.0 ** n


def paired_comparison(questions: Sequence[EvalQuestion], samples, n: int, a: str = "prm",
                      b: str = "majority", *, bootstrap: int = 2000, seed: int = 0) -> dict:
    """Per-question paired comparison of two selection methods on the first ``n`` samples:
    questions only A gets right (wins), only B (losses), the sign-test p-value, and the
    accuracy difference (A - B, %) with a 95% paired bootstrap interval over questions.
    ``samples[i]`` holds the samples drawn for ``questions[i]``."""
    from eurollm_jax.prm.best_of_n import select

    if len(questions) != len(samples):
        raise ValueError(f"paired_comparison needs one row of samples per question: got "
                         f"{len(questions)} questions and {len(samples)} rows")

    def right(row, method):
        s = select(row[:n], method)
        return s is not None and s.correct

    diff = np.array([int(right(row, a)) - int(right(row, b)) for row in samples], np.float64)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, len(diff), size=(bootstrap, len(diff)))].mean(axis=1) * 100
    return {"n": n, "a": a, "b": b, "questions": len(diff), "wins": wins, "losses": losses,
            "difference": float(diff.mean() * 100), "sign_test_p": sign_test(wins, losses),
            "bootstrap_95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


# ------------------------------------------------------------------ the experiment
@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    languages: tuple[str, ...] = LANGUAGES
    generator_problems: int = 2000  # per language
    prm_problems: int = 1500  # per language
    prm_eval_problems: int = 100  # per language, held-out labelled solutions
    eval_problems: int = 100  # per language, best-of-N questions
    misremembered_fraction: float = 0.15
    hard_error: float = 0.65
    slip_error: float = 0.03
    prm_error: float = 0.5
    generator_steps: int = 1200
    # The PRM trains in ``prm_cycles`` cosine cycles of ``prm_steps`` each, every cycle a fresh
    # run (new AdamW state, warm-up) from the previous cycle's params. The first cycle trains
    # on ``prm_first_languages`` only (None: all): a curriculum that learns the arithmetic
    # check in one line format first, which left the ln 2 plateau within the first cycle
    # where all five formats at once stayed on it for up to four cycles (docs/prm.md).
    prm_steps: int = 1500  # per cycle
    prm_cycles: int = 3
    prm_first_languages: tuple[str, ...] | None = ("en",)
    batch_size: int = 32  # generator rows per step
    prm_batch_size: int = 32  # PRM rows per step (each row packs 1-3 labelled prefixes)
    seq_len: int = 192  # training rows; the model holds 256 positions
    max_new_tokens: int = 112
    n: int = 16
    temperature: float = 0.7
    aggregate: str = "min"
    loss: str = "two_way"
    d_model: int = 64
    num_layers: int = 3
    generator_lr: float = 3e-3
    prm_lr: float = 2e-3
    seed: int = 0


def model_config(exp: ExperimentConfig, steps: int, lr: float, batch_size: int):
    from configs.base import base_config

    config = base_config("tiny", vocab_size=261, d_model=exp.d_model, num_layers=exp.num_layers,
                         num_heads=4, num_kv_heads=2, head_dim=exp.d_model // 4,
                         ffn_dim=exp.d_model * 3, max_seq_len=256,
                         compute_dtype="float32", param_dtype="float32")
    t = config.train
    t.steps, t.batch_size, t.seq_len, t.log_every = steps, batch_size, exp.seq_len, 50
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


def prm_cycle_dir(workdir: str, cycle: int) -> str:
    """The training workdir of the PRM's ``cycle``-th cycle (1-based)."""
    return os.path.join(workdir, "prm" if cycle == 1 else f"prm_cycle{cycle}")


def generator_errors(exp: ExperimentConfig) -> GeneratorErrors:
    return GeneratorErrors.draw(exp.misremembered_fraction, exp.hard_error, exp.slip_error,
                                exp.seed + 7)


def step_verdicts(scorer, solutions: Sequence[StepSolution]) -> dict:
    """The PRM's step verdicts (p_k > 0.5) against the labels of ``solutions``, per language:
    accuracy, accuracy on + and on - steps, counts (in %)."""
    probs = scorer.step_probabilities([(s.question, list(s.steps)) for s in solutions])
    counts: dict = {}
    for s, p in zip(solutions, probs):
        c = counts.setdefault(s.language, np.zeros((2, 2), np.int64))  # [label, verdict]
        for pk, good in zip(p, s.labels):
            c[int(good), int(pk > 0.5)] += 1
    def stats(c):
        return {"accuracy": 100.0 * (c[0, 0] + c[1, 1]) / c.sum(),
                "accuracy_plus": 100.0 * c[1, 1] / max(c[1].sum(), 1),
                "accuracy_minus": 100.0 * c[0, 0] / max(c[0].sum(), 1),
                "steps": int(c.sum()), "minus_steps": int(c[0].sum())}

    out = {lang: stats(c) for lang, c in sorted(counts.items())}
    out["all"] = stats(sum(counts.values()))
    return out


class StageInterrupted(RuntimeError):
    """A training stage of the experiment stopped before its last step (SIGTERM or
    ``train.stop_after``); its checkpoint is kept and the same call resumes it."""


def _require_finished(stage: str, result, total_steps: int) -> None:
    if result.stopped_early or result.step < total_steps:
        raise StageInterrupted(
            f"the {stage} training stopped at step {result.step} of {total_steps} "
            f"(SIGTERM or train.stop_after); its checkpoint is kept in {result.workdir}. "
            f"Call run_experiment again with the same workdir to resume it; the later "
            f"stages need its exported params.")


def run_experiment(workdir: str, exp: ExperimentConfig = ExperimentConfig(), *,
                   devices=None) -> dict:
    """Train the generator and the PRM, run best-of-N; returns the report (module doc)."""
    import ml_collections

    from eurollm_jax.checkpoint import load_params
    from eurollm_jax.inference import Engine
    from eurollm_jax.prm.best_of_n import (
        accuracy_table,
        default_ns,
        sample_solutions,
        score_samples,
        write_report,
    )
    from eurollm_jax.prm.scoring import PRMScorer
    from eurollm_jax.prm.train import train_prm
    from eurollm_jax.tokenizer import ByteTokenizer
    from eurollm_jax.train import train

    if exp.prm_cycles < 1:
        raise ValueError(f"prm_cycles must be at least 1 (got {exp.prm_cycles}): the PRM "
                         f"trains in that many cycles of prm_steps each")
    tok = ByteTokenizer()
    langs = tuple(exp.languages)
    first_langs = tuple(exp.prm_first_languages or langs)
    unknown = sorted(set(first_langs) - set(langs))
    if unknown:
        raise ValueError(f"prm_first_languages {unknown} are not among the experiment's "
                         f"languages {list(langs)}: the first cycle trains on a subset of them")
    os.makedirs(workdir, exist_ok=True)
    report_dir = os.path.join(workdir, "report")
    os.makedirs(report_dir, exist_ok=True)
    errors = generator_errors(exp)
    timings: dict = {}
    write_json(os.path.join(workdir, "experiment.json"),
               {"config": dataclasses.asdict(exp),
                "misremembered": [[list(f), r] for f, r in errors.misremembered]})
    # 1. the generator
    clock = time.perf_counter()
    gen_dir = os.path.join(workdir, "generator")
    if not os.path.isdir(os.path.join(gen_dir, "params")):
        gen_file = os.path.join(workdir, "generator_records.jsonl")
        write_jsonl(gen_file, generator_records(
            tok, problems(exp.generator_problems, langs, exp.seed + 1), errors, exp.seed + 2))
        gen_cfg = model_config(exp, exp.generator_steps, exp.generator_lr, exp.batch_size)
        gen_cfg.data.sft_file = gen_file
        _require_finished("generator", train(gen_cfg, gen_dir, devices=devices),
                          exp.generator_steps)
    timings["generator_train_s"] = time.perf_counter() - clock
    # 2. the PRM, from the generator's params, in cycles (each resumable, each exported)
    clock = time.perf_counter()
    prm_file = os.path.join(workdir, "prm_solutions.jsonl")
    if not os.path.exists(prm_file):
        write_jsonl(prm_file, steps_records(labelled_solutions(
            problems(exp.prm_problems, langs, exp.seed + 3), exp.prm_error, exp.seed + 4)))
    init = os.path.join(gen_dir, "params")
    for cycle in range(1, exp.prm_cycles + 1):
        prm_dir = prm_cycle_dir(workdir, cycle)
        if not os.path.isdir(os.path.join(prm_dir, "params")):
            prm_cfg = model_config(exp, exp.prm_steps, exp.prm_lr, exp.prm_batch_size)
            prm_cfg.train.init_params = init
            prm_cfg.prm = ml_collections.ConfigDict({
                "setup": "multi", "loss": exp.loss, "aggregate": exp.aggregate,
                "train_data": prm_file,
                "train_languages": first_langs if cycle == 1 else langs})
            result, _ = train_prm(prm_cfg, prm_dir, devices=devices)
            _require_finished(f"PRM (cycle {cycle} of {exp.prm_cycles})", result,
                              exp.prm_steps)
        init = os.path.join(prm_dir, "params")
    timings["prm_train_s"] = time.perf_counter() - clock
    scorer = PRMScorer(load_params(init), tok)
    # 3. held-out step verdicts
    clock = time.perf_counter()
    held_out = labelled_solutions(problems(exp.prm_eval_problems, langs, exp.seed + 8),
                                  exp.prm_error, exp.seed + 9)
    verdicts = step_verdicts(scorer, held_out)
    write_json(os.path.join(report_dir, "prm_step_verdicts.json"), verdicts)
    timings["prm_verdicts_s"] = time.perf_counter() - clock
    # 4. best-of-N on held-out questions
    clock = time.perf_counter()
    probs = problems(exp.eval_problems, langs, exp.seed + 5)
    questions = eval_questions(probs)
    samples_file = os.path.join(report_dir, "samples.jsonl")
    generator = Engine(load_params(os.path.join(gen_dir, "params")), tok)
    samples = sample_solutions(generator, tok, questions, exp.n, temperature=exp.temperature,
                               max_new_tokens=exp.max_new_tokens, seed=exp.seed + 6)
    timings["sampling_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    score_samples(scorer, questions, samples, exp.aggregate)
    timings["scoring_s"] = time.perf_counter() - clock
    write_jsonl(samples_file, (
        {"id": q.id, "language": q.language, "question": q.question, "gold": q.answer,
         "sample": j, "text": s.text, "answer": s.answer, "correct": s.correct,
         "step_probs": s.step_probs, "score": None if math.isnan(s.score) else s.score,
         "exact_labels": check_steps(q.question, s.steps) if s.steps else []}
        for q, row in zip(questions, samples) for j, s in enumerate(row)))
    table = accuracy_table(questions, samples)
    ns = default_ns(exp.n)
    affected = [errors.affects(p) for p in probs]
    split = {}
    for name, keep in (("with_misremembered_fact", True), ("without", False)):
        idx = [i for i, a in enumerate(affected) if a == keep]
        if idx:
            sub = accuracy_table([questions[i] for i in idx], [samples[i] for i in idx], ns)
            split[name] = {"questions": len(idx),
                           "accuracy": {m: {str(k): v["average"] for k, v in t.items()}
                                        for m, t in sub.items()}}
    paired = {str(k): paired_comparison(questions, samples, k) for k in ns}
    paired_vote = {str(k): paired_comparison(questions, samples, k, "prm_vote")
                   for k in ns}
    per_language_paired = {
        lang: paired_comparison([q for q in questions if q.language == lang],
                                [r for q, r in zip(questions, samples) if q.language == lang],
                                exp.n)
        for lang in langs}
    report = {"config": dataclasses.asdict(exp),
              "prm_held_out_step_verdicts": verdicts,
              "prm_step_accuracy_on_samples": _step_accuracy(questions, samples),
              "sample_accuracy": _sample_accuracy(questions, samples),
              "split_by_misremembered_fact": split,
              "prm_vs_majority": paired, "prm_vote_vs_majority": paired_vote,
              "prm_vs_majority_per_language_at_n": per_language_paired,
              "timings_s": timings}
    files = write_report(report_dir, table, report)
    report.update(accuracy=table, files=files)
    write_json(os.path.join(report_dir, "summary.json"),
               {k: v for k, v in report.items() if k != "accuracy"})
    return report


def _step_accuracy(questions, samples) -> dict:
    """Per language: how often the PRM's p_k > 0.5 agrees with exact (local) step checking
    on the generated samples."""
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
    """Single-sample accuracy of the generator per language (all N samples, in %)."""
    out = {}
    for q, row in zip(questions, samples):
        c = out.setdefault(q.language, [0, 0])
        c[0] += sum(s.correct for s in row)
        c[1] += len(row)
    return {lang: 100.0 * h / n for lang, (h, n) in sorted(out.items())}
