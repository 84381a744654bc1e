"""XL-AlpacaEval: position swap, unparsed judgments, wrong-language answers, bootstrap CI,
and an end-to-end run over HTTP with the tiny model as candidate and judge."""

import json
import os

import numpy as np
import pytest

from eurollm_jax.evaluation import xl_alpacaeval as X
from eurollm_jax.fileio import write_jsonl
from eurollm_jax.llm import LLMResult

GERMAN = ["Die Hauptstadt von Frankreich ist Paris, eine sehr schöne und alte Stadt.",
          "Man sollte jeden Tag genug Wasser trinken und sich ausreichend bewegen.",
          "Der Hund schläft gern im Garten, wenn die Sonne scheint und es warm ist.",
          "Ein gutes Frühstück besteht aus Brot, Käse, Obst und einer Tasse Kaffee."]
ENGLISH = "The capital of France is Paris, a very beautiful and old city in Europe."


class Scripted:
    """A client with LLMClient's chat interface whose replies come from a function."""

    def __init__(self, name, reply):
        self.name, self.reply, self.requests = name, reply, []

    def chat(self, conversations, **kw):
        self.requests.extend(conversations)
        return [LLMResult(text=self.reply(c[-1]["content"])) for c in conversations]


def _setup(n=4):
    instructions = [{"instruction": f"Question {i}?"} for i in range(n)]
    refs = [{"instruction": f"Question {i}?", "output": GERMAN[(i + 1) % 4],
             "generator": "ref"} for i in range(n)]
    return instructions, refs


def _answers(answers):
    return lambda prompt: answers[int(prompt.split("Question ")[1].split("?")[0])]


def _judge_prompt():
    return {"user": "Instruction: {instruction}\nOutput (a): {output_a}\n"
                    "Output (b): {output_b}\nLanguage: {language}"}


def _positions(prompt):
    a = prompt.split("Output (a): ")[1].split("\nOutput (b): ")[0]
    b = prompt.split("Output (b): ")[1].split("\nLanguage")[0]
    return a, b


def _run(candidate, judge, identify=None, n=4):
    instructions, refs = _setup(n)
    return X.judge_language(lang="de", instructions=instructions, references=refs,
                            candidate=candidate, judge=judge,
                            answer_prompt={"user": "{instruction} ({language})"},
                            judge_prompt=_judge_prompt(), identify=identify, bootstrap=200)


def test_position_biased_judge_gives_half():
    cand = Scripted("cand", _answers(GERMAN))
    judge = Scripted("judge", lambda p: "Output (a)")  # always the first position
    result, answers, judgments = _run(cand, judge)
    assert result["win_rate"] == 0.5 and result["position_agreement"] == 0.0
    assert result["judge_requests"] == 8 and len(judge.requests) == 8
    for j, (first, second) in zip(judgments, zip(judge.requests[::2], judge.requests[1::2])):
        cand_answer = answers[j["index"]]["output"]
        assert _positions(first[-1]["content"])[0] == cand_answer  # candidate is (a) ...
        assert _positions(second[-1]["content"])[1] == cand_answer  # ... then (b)
        assert j["verdicts"] == ["a", "a"] and j["score"] == 0.5


def test_consistent_judge_unparsed_and_wrong_language():
    from eurollm_jax.evaluation.xl_alpacaeval import _language_identifier

    # candidate: answers 0, 1 are German and marked GOOD; 2 is English; 3 German, not good
    outs = [GERMAN[0] + " GOOD", GERMAN[1] + " GOOD", ENGLISH, GERMAN[3]]
    cand = Scripted("cand", _answers(outs))

    def judge_reply(prompt):
        a, b = _positions(prompt)
        if "Question 1?" in prompt:
            return "Both are fine."  # never parses
        if "GOOD" in a or "GOOD" in b:
            return "Output (a)" if "GOOD" in a else "Output (b)"
        return "Output (a)" if a == GERMAN[0] else "Output (b)"  # pair 3's reference

    judge = Scripted("judge", judge_reply)
    result, answers, judgments = _run(cand, judge, identify=_language_identifier())
    assert [a["outcome"] for a in answers] == ["judged", "unparsed",
                                               "candidate_wrong_language", "judged"]
    assert answers[2]["language"] == "en" and answers[2]["score"] == 0.0
    assert result["judge_requests"] == 6  # the wrong-language answer is never judged
    assert result["unparsed_judgments"] == 2 and result["scored_pairs"] == 3
    # pair 0: candidate GOOD wins both orders; pair 3: the reference wins both orders
    assert answers[0]["score"] == 1.0 and answers[3]["score"] == 0.0
    assert result["win_rate"] == pytest.approx(1 / 3) and result["position_agreement"] == 1.0
    assert result["wrong_language"] == {"candidate": 1, "reference": 0}


def test_parse_verdict():
    assert X.parse_verdict("Output (a)") == "a"
    assert X.parse_verdict("output(B) is better.") == "b"
    assert X.parse_verdict("b") == "b"
    assert X.parse_verdict("Output (a) and Output (b)") is None
    assert X.parse_verdict("I cannot decide") is None and X.parse_verdict(None) is None


def test_bootstrap_ci_against_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(3).integers(0, 3, size=80) / 2.0
    low, high = X.bootstrap_ci(x, resamples=20000, seed=1)
    ref = scipy_stats.bootstrap((x,), np.mean, n_resamples=20000, method="percentile",
                                random_state=2).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.01) and high == pytest.approx(ref.high, abs=0.01)
    assert low < x.mean() < high
    assert X.bootstrap_ci([], resamples=10) == (None, None)


def test_bad_inputs(tmp_path):
    write_jsonl(str(tmp_path / "inst.jsonl"), [{"instruction": "a"}, {"instruction": "b"}])
    write_jsonl(str(tmp_path / "de.jsonl"), [{"instruction": "a", "output": "x"}])
    rows = X.read_instructions(str(tmp_path / "inst.jsonl"))
    with pytest.raises(X.XLAlpacaEvalError, match=r"no reference answer for instructions \[1\]"):
        X.read_references(str(tmp_path), "de", rows)
    with pytest.raises(X.XLAlpacaEvalError, match="no reference answers for 'fr'"):
        X.read_references(str(tmp_path), "fr", rows)
    (tmp_path / "p.json").write_text(json.dumps({"user": "{instruction} {output_a}"}))
    with pytest.raises(X.XLAlpacaEvalError, match="no {output_b} field"):
        X.load_prompt(str(tmp_path / "p.json"), ("instruction", "language", "output_a",
                                                 "output_b"))


@pytest.mark.slow  # ~35 s: the server compiles its prefill/decode shapes
@pytest.mark.torch
def test_end_to_end_over_http_with_tiny_candidate_and_judge(tmp_path, engine):
    from eurollm_jax.inference.server import ServerConfig, running_server

    instructions, refs = _setup(3)
    write_jsonl(str(tmp_path / "inst.jsonl"), instructions)
    os.makedirs(tmp_path / "refs")
    write_jsonl(str(tmp_path / "refs" / "de.jsonl"), refs)
    (tmp_path / "judge.json").write_text(json.dumps(_judge_prompt()))
    kw = dict(instructions_file=str(tmp_path / "inst.jsonl"), references_dir=str(tmp_path / "refs"),
              languages=["de"], output_dir=str(tmp_path / "out"), judge_model="tiny",
              candidate_model="tiny", judge_prompt_file=str(tmp_path / "judge.json"),
              language_check=False, max_tokens=8, judge_max_tokens=4, bootstrap=100)
    with running_server(engine, ServerConfig(model_name="tiny")) as url:
        result = X.run_xl_alpacaeval(None, judge_url=url, candidate_url=url, **kw)["de"]
    assert result["pairs"] == 3 and result["judge_requests"] == 6 and result["judge_errors"] == 0
    judgments = [json.loads(x) for x in open(tmp_path / "out" / "xl_alpacaeval" /
                                             "de.judgments.jsonl")]
    answers = [json.loads(x) for x in open(tmp_path / "out" / "xl_alpacaeval" /
                                           "de.answers.jsonl")]
    unparsed = 0
    for j in judgments:
        cand = answers[j["index"]]["output"]
        assert _positions(j["prompts"][0])[0] == cand and _positions(j["prompts"][1])[1] == cand
        assert j["verdicts"] == [X.parse_verdict(t) for t in j["judge_texts"]]
        unparsed += sum(v is None for v in j["verdicts"])
    assert result["unparsed_judgments"] == unparsed
    record = json.loads(next((tmp_path / "out" / "registry").glob("xl_alpacaeval--*")).read_text())
    assert record["details"]["judge_usage"]["requests"] == 6
    # the server is gone: a rerun answers from the finished language and sends nothing
    again = X.run_xl_alpacaeval(None, judge_url=url, candidate_url=url, **kw)["de"]
    assert again == result
