"""The European benchmark set: every family runs offline on local files in the published
format; its config is lm-eval's built-in one with only the dataset replaced; the scores
equal an independent recomputation with transformers of the requests lm-eval made."""

import os

import numpy as np
import pytest

pytest.importorskip("lm_eval")
pytestmark = pytest.mark.torch

from eurollm_jax.evaluation import lm_eval_tasks as L  # noqa: E402
from eurollm_jax.evaluation.common import in_memory_model  # noqa: E402
from tests.evaluation.lm_eval_fixtures import ROWS, write_family  # noqa: E402
from tests.inference.conftest import hf_greedy, hf_token_logprobs  # noqa: E402

MAX_LENGTH = 256
DATASET_KEYS = {"task", "tag", "custom_dataset", "dataset_path", "dataset_name",
                "dataset_kwargs", "num_fewshot",
                "training_split", "validation_split", "test_split", "fewshot_split"}


def test_configs_are_lm_eval_builtins_with_local_data(tmp_path):
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    data = tmp_path / "data"
    langs = {f: write_family(str(data), f, n=3) for f in ROWS}
    assert set(ROWS) == set(L.FAMILIES)
    for family, lang in langs.items():
        path = tmp_path / "tasks" / f"{family}.yaml"
        os.makedirs(path.parent, exist_ok=True)
        path.write_text(L.task_yaml(family, lang, str(data)))
        ours = load_yaml(str(path), resolve_func=False)
        builtin = load_yaml(L.builtin_config(family, lang), resolve_func=False)
        for key in set(ours) | set(builtin):
            if key not in DATASET_KEYS:
                assert ours.get(key) == builtin.get(key), (family, key)
        assert ours["dataset_path"] == "json" and ours["dataset_name"] is None
        if family in L.LEADERBOARD_SHOTS:
            assert ours["num_fewshot"] == L.LEADERBOARD_SHOTS[family]
    # every task builds offline from the local files
    manager = TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False)
    names = [L.task_name(f, l) for f, l in langs.items()]
    loaded = manager.load(names)["tasks"]
    for name in names:
        task = loaded[name]
        docs = list(task.test_docs() if task.has_test_docs() else task.validation_docs())
        assert len(docs) == 3, name
    assert L.builtin_config("belebele", "de").endswith("belebele_deu_Latn.yaml")
    assert L.builtin_config("arc", "pl").endswith("_arc_yaml")  # language-independent prompt


def test_bad_tasks_and_files(tmp_path):
    with pytest.raises(L.LMEvalTaskError,
                       match=r"xnli has prompts for .*'de'.* in lm-eval, not 'pl'"):
        L.builtin_config("xnli", "pl")
    with pytest.raises(L.LMEvalTaskError, match=r"no .*arc/de/test\.\{jsonl"):
        L.task_yaml("arc", "de", str(tmp_path))


def _loglik(hf_model, tokenizer, context, continuation):
    """log p(continuation | BOS + context) under transformers, split as lm-eval's HF
    backend does (the whole string's tokens after the context's; inputs longer than
    MAX_LENGTH keep their last MAX_LENGTH + 1 tokens)."""
    whole = tokenizer.encode(context + continuation, add_bos=False)
    n_cont = len(whole) - len(tokenizer.encode(context, add_bos=False))
    ids = ([1] + whole)[-(MAX_LENGTH + 1):]
    return sum(hf_token_logprobs(hf_model, ids)[-n_cont:])


def _run(tmp_path, engine, family, **kw):
    data = tmp_path / "data"
    lang = write_family(str(data), family, n=4)
    out = L.run_lm_eval(in_memory_model(engine), tasks=[family], languages=[lang],
                        data_dir=str(data), output_dir=str(tmp_path / "out"),
                        max_length=MAX_LENGTH, log_samples=True, bootstrap_iters=0, **kw)
    return lang, out, out["results"][f"{family}.{lang}"]["samples"][L.task_name(family, lang)]


def _check_multiple_choice(family, samples, scores, hf_model, tokenizer):
    hits, hits_norm, mc2 = [], [], []
    for s in samples:
        lls = np.array([_loglik(hf_model, tokenizer, c, x) for c, x in s["arguments"]])
        ours = np.array([r[0][0] for r in s["resps"]])
        np.testing.assert_allclose(ours, lls, atol=2e-4)
        if family == "truthfulqa":
            p = np.exp(lls) / np.exp(lls).sum()
            mc2.append(p[np.array(s["doc"]["mc2_targets"]["labels"]) == 1].sum())
            continue
        target = s["target"]
        if isinstance(target, str):  # a choice's text (MMLU's "A".."D"), or its index
            choices = [x.strip() for _, x in s["arguments"]]
            target = choices.index(target.strip()) if target.strip() in choices else int(target)
        hits.append(int(np.argmax(lls)) == target)
        lengths = np.array([len(x) - 1 for _, x in s["arguments"]], float)  # " " + choice
        hits_norm.append(int(np.argmax(lls / lengths)) == target)
    if family == "truthfulqa":
        assert scores[f"{family}/acc"] == pytest.approx(np.mean(mc2), abs=1e-4)
        return
    assert scores[f"{family}/acc"] == pytest.approx(np.mean(hits))
    if f"{family}/acc_norm" in scores:
        assert scores[f"{family}/acc_norm"] == pytest.approx(np.mean(hits_norm))


def test_arc_matches_recomputation_and_resumes(tmp_path, engine, hf_model, tokenizer,
                                               monkeypatch):
    lang, out, samples = _run(tmp_path, engine, "arc", num_fewshot=1)
    assert len(samples) == 4 and samples[0]["arguments"][0][0].count("Question:") == 2
    _check_multiple_choice("arc", samples, out["scores"][lang], hf_model, tokenizer)
    table = (tmp_path / "out" / "lm_eval.md").read_text()
    assert "| arc/acc |" in table
    # a rerun finds the finished pair and runs nothing
    import lm_eval

    monkeypatch.setattr(lm_eval, "simple_evaluate", lambda **kw: pytest.fail("re-ran"))
    again = L.run_lm_eval(in_memory_model(engine), tasks="arc", languages=[lang],
                          data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out"),
                          num_fewshot=1, max_length=MAX_LENGTH, log_samples=True,
                          bootstrap_iters=0)
    assert again["scores"] == out["scores"]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["hellaswag", "mmlu", "truthfulqa", "truthfulqa_mc1",
                                    "belebele", "xnli", "xcopa", "xstorycloze"])
def test_family_matches_recomputation(tmp_path, engine, hf_model, tokenizer, family):
    shots = 1 if family in ("hellaswag", "mmlu") else None
    lang, out, samples = _run(tmp_path, engine, family, num_fewshot=shots)
    assert len(samples) == 4
    name = "truthfulqa_mc1" if family == "truthfulqa_mc1" else family
    _check_multiple_choice(name, samples, out["scores"][lang], hf_model, tokenizer)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gsm8k", "mgsm"])
def test_generative_family_matches_transformers_greedy(tmp_path, engine, hf_model, tokenizer,
                                                      family):
    from eurollm_jax.inference.tokenization import decode_continuation, find_stop_string

    lang, out, samples = _run(tmp_path, engine, family, num_fewshot=1 if family == "gsm8k" else 0,
                              gen_kwargs={"max_gen_toks": 6})
    for s in samples:
        context, kwargs = s["arguments"][0]
        ids = [1] + tokenizer.encode(context, add_bos=False)
        gen = [t for t in hf_greedy(hf_model, [ids], 6)[0] if t != 2]
        text = decode_continuation(tokenizer, ids, gen)
        found = find_stop_string(text, kwargs["until"])
        assert s["resps"][0][0] == (text[: found[0]] if found else text)
    assert 0.0 <= out["scores"][lang][f"{family}/exact_match[flexible-extract]"] <= 1.0


@pytest.mark.slow
def test_lm_eval_task_names_run_as_they_are(tmp_path, engine, hf_model, tokenizer):
    """A name that is not a family is an lm-eval task (here the user's own YAML next to the
    built-in index), reported under language "-"."""
    from eurollm_jax.fileio import write_jsonl, write_text

    rows = [{"question": "The quick brown", "choices": ["fox", "cat"], "label": 0},
            {"question": "Good morning, how are", "choices": ["you", "they"], "label": 1}]
    write_jsonl(str(tmp_path / "mc.jsonl"), rows)
    write_text(str(tmp_path / "tasks" / "my_mc.yaml"),
               f"task: my_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
               f"    test: {tmp_path / 'mc.jsonl'}\ntest_split: test\n"
               "output_type: multiple_choice\ndoc_to_text: question\ndoc_to_choice: choices\n"
               "doc_to_target: label\nmetric_list:\n  - metric: acc\n")
    out = L.run_lm_eval(in_memory_model(engine), tasks="my_mc", languages=[], data_dir=None,
                        output_dir=str(tmp_path / "out"), task_include_path=str(tmp_path / "tasks"),
                        max_length=MAX_LENGTH, bootstrap_iters=0)
    expected = []
    for r in rows:
        lls = [_loglik(hf_model, tokenizer, r["question"], " " + c) for c in r["choices"]]
        expected.append(int(np.argmax(lls)) == r["label"])
    assert out["scores"]["-"]["my_mc/acc"] == pytest.approx(np.mean(expected))
