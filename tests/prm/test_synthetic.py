"""The synthetic multilingual arithmetic task; the slow end-to-end experiment (a tiny
generator with step errors, a PRM on labelled steps, best-of-N vs majority vote at N=16)."""

import numpy as np
import pytest

from eurollm_jax.prm import extract_answer
from eurollm_jax.prm.synthetic import (
    LANGUAGES,
    ExperimentConfig,
    check_steps,
    labelled_solutions,
    make_problem,
    problems,
    run_experiment,
    solve,
)


def test_problems_labels_and_checker_agree():
    rng = np.random.default_rng(0)
    for lang in LANGUAGES:
        for _ in range(30):
            p = make_problem(rng, lang)
            assert 0 <= p.answer <= 9
            lines, labels, value = solve(p, rng, 0.4)
            assert check_steps(p.question, lines) == labels
            assert extract_answer(lines[-1], lang) == value
            assert (value == p.answer) >= labels[-1]  # all steps right -> right answer
    clean = labelled_solutions(problems(5, LANGUAGES, 1), 0.0, 2)
    assert all(all(s.labels) and s.steps[-1].endswith(f"{s.answer}.") for s in clean)


@pytest.mark.slow
def test_prm_best_of_n_beats_majority_vote(tmp_path):
    report = run_experiment(str(tmp_path), ExperimentConfig())
    acc = report["accuracy"]
    print(report["prm_step_accuracy"], report["sample_accuracy"])
    for method in ("prm", "majority", "prm_vote", "oracle"):
        print(method, acc[method][16])
    assert acc["prm"][16]["average"] > acc["majority"][16]["average"]
