"""lm_eval.simple_evaluate through the registered eurollm_jax backend, on local tasks whose
expected scores are computed here with transformers."""

import math
import os
import re

import numpy as np
import pytest

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.torch

from eurollm_jax.fileio import write_jsonl, write_text  # noqa: E402
from eurollm_jax.inference.scoring import rolling_windows  # noqa: E402
from eurollm_jax.inference.tokenization import decode_continuation, find_stop_string  # noqa: E402
from tests.inference.conftest import hf_greedy, hf_token_logprobs  # noqa: E402

MAX_LENGTH = 32
MC_DOCS = [
    ("Question: what colour is the sky? Answer:", ["blue", "four", "the dog"]),
    ("The quick brown", ["fox", "cat", "door", "mat"]),
    ("Good morning, how are", ["you", "they", "rights"]),
    ("Le renard brun", ["rapide", "saute", "chien"]),
    ("Numbers: one two", ["three", "four", "ten"]),
    ("All human beings are born", ["free", "equal", "lazy"]),
]
GEN_PROMPTS = [
    "The cat sat",
    "Question: what is two plus two? Answer:",
    "Good morning",
    "De snelle",
    "They are endowed",
    "Szybki",
]
ROLLING_DOCS = [
    "All human beings are born free and equal in dignity and rights. "
    "They are endowed with reason and "
    "conscience. The quick brown fox jumps over the lazy dog. Good morning, how are you today?",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
]


def _plain(tok, text):
    return tok.encode(text, add_bos=False)


def _mc_scores(hf_model, tok, question, choices):
    scores = []
    for choice in choices:
        whole = _plain(tok, question + " " + choice)
        ctx = _plain(tok, question)
        cont = whole[len(ctx) :]
        ids = [1] + ctx + cont
        scores.append(sum(hf_token_logprobs(hf_model, ids)[len(ctx) :]))
    return scores


TASK_SPECS = {
    "mc": "output_type: multiple_choice\ndoc_to_text: question\ndoc_to_choice: choices\n"
    "doc_to_target: label\nmetric_list:\n  - metric: acc\n    aggregation: mean\n"
    "    higher_is_better: true\n",
    "gen": "output_type: generate_until\ndoc_to_text: prompt\ndoc_to_target: answer\n"
    'generation_kwargs:\n  until: ["\\n", "."]\n  max_gen_toks: 6\n  do_sample: false\n'
    "metric_list:\n  - metric: exact_match\n    aggregation: mean\n"
    "    higher_is_better: true\n",
    "roll": 'output_type: loglikelihood_rolling\ndoc_to_text: ""\ndoc_to_target: text\n'
    "metric_list:\n  - metric: word_perplexity\n",
}


def _write_tasks(d, rows_by_task):
    """tiny_<name>.yaml + <name>.jsonl for each of TASK_SPECS."""
    for name, spec in TASK_SPECS.items():
        data = os.path.join(d, f"{name}.jsonl")
        write_jsonl(data, rows_by_task[name])
        write_text(
            os.path.join(d, f"tiny_{name}.yaml"),
            f"task: tiny_{name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    test: {data}\ntest_split: test\n" + spec,
        )


def test_simple_evaluate_through_backend(tmp_path, hf_dir, hf_model, tokenizer):
    import lm_eval
    from lm_eval.tasks import TaskManager

    import eurollm_jax.inference.lm_eval_backend  # noqa: F401  (registers "eurollm_jax")

    # expected multiple-choice answers: label = transformers' argmax for even docs, another for odd
    mc_rows, mc_hits = [], []
    for i, (q, choices) in enumerate(MC_DOCS):
        best = int(np.argmax(_mc_scores(hf_model, tokenizer, q, choices)))
        label = best if i % 2 == 0 else (best + 1) % len(choices)
        mc_rows.append({"question": q, "choices": choices, "label": label})
        mc_hits.append(label == best)
    # expected generations: transformers' greedy text cut at the stop strings
    ctxs = [[1] + _plain(tokenizer, p) for p in GEN_PROMPTS]
    gens = hf_greedy(hf_model, ctxs, 6)
    gen_rows = []
    for i, (p, ctx, g) in enumerate(zip(GEN_PROMPTS, ctxs, gens)):
        text = decode_continuation(tokenizer, ctx, [t for t in g if t != 2])
        found = find_stop_string(text, ["\n", "."])
        text = text[: found[0]] if found else text
        gen_rows.append({"prompt": p, "answer": text if i % 2 == 0 else text + " wrong"})
    # expected rolling log-likelihood over windows of MAX_LENGTH
    total_ll, total_words = 0.0, 0
    for doc in ROLLING_DOCS:
        toks = _plain(tokenizer, doc)
        for ctx, cont in rolling_windows(toks, 1, MAX_LENGTH):
            total_ll += sum(hf_token_logprobs(hf_model, ctx + cont)[len(ctx) - 1 :])
        total_words += len(re.split(r"\s+", doc))
    assert len(_plain(tokenizer, ROLLING_DOCS[0])) > MAX_LENGTH  # several windows
    _write_tasks(
        str(tmp_path), {"mc": mc_rows, "gen": gen_rows, "roll": [{"text": d} for d in ROLLING_DOCS]}
    )

    out = lm_eval.simple_evaluate(
        model="eurollm_jax",
        model_args=(
            f"pretrained={hf_dir[0]},compute_dtype=float32,param_dtype=float32,"
            f"max_length={MAX_LENGTH}"
        ),
        tasks=["tiny_mc", "tiny_gen", "tiny_roll"],
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
        batch_size=8,
        log_samples=False,
        bootstrap_iters=0,
    )
    res = out["results"]
    assert res["tiny_mc"]["acc,none"] == pytest.approx(np.mean(mc_hits))
    assert 0 < res["tiny_mc"]["acc,none"] < 1
    assert res["tiny_gen"]["exact_match,none"] == pytest.approx(0.5)
    assert res["tiny_roll"]["word_perplexity,none"] == pytest.approx(
        math.exp(-total_ll / total_words), rel=1e-4
    )


def test_backend_from_objects(jax_model, tokenizer):
    from eurollm_jax.inference.lm_eval_backend import EuroLLMJaxLM

    lm = EuroLLMJaxLM(model=jax_model, tokenizer=tokenizer, max_length=MAX_LENGTH)
    assert lm.eot_token_id == 2 and lm.prefix_token_id == 1 and lm.max_length == MAX_LENGTH
    assert lm.tok_encode("<|im_start|>user\nhi<|im_end|>")[:1] == [3]
    text = lm.apply_chat_template([{"role": "user", "content": "hi"}])
    assert text.endswith("<|im_start|>assistant\n")
