"""The three pipelines end to end over real HTTP against the scripted endpoint (content the
steps can parse, malformed answers tagged in the seeds): counts with reasons, the SFT schema,
audit records, per-group counts, and loss on the assistant turn only."""

import json
import os

import pytest

from eurollm_jax.data.sft import read_sft_records, render_sft_record
from eurollm_jax.filtering import jaccard
from eurollm_jax.filtering.dedup import normalize
from eurollm_jax.synthesis import read_sft_output, run_local
from tests.synthesis.conftest import SEEDS, job_config, write_seeds


def _run(pipeline, tmp_path, url, **sections):
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS[pipeline])
    out = str(tmp_path / "out")
    report = run_local(job_config(pipeline, seeds, url, **sections), out)
    dropped = [json.loads(x) for x in open(os.path.join(out, "dropped.jsonl"), encoding="utf-8")]
    return out, report, read_sft_output(out), dropped


def _check_accounting(report, sft, dropped):
    """Every record a step took in went out or was dropped with a reason, unless it expands."""
    for name, c in report["steps"].items():
        if name not in ("translate", "respond"):
            assert c["in"] == c["out"] + sum(c["dropped"].values()), name
    assert report["sft_records"] == len(sft) and report["dropped"] == len(dropped)
    assert all(d["drop_reason"] and d["drop_step"] for d in dropped)


def _check_outputs(out, sft, source):
    assert read_sft_records(os.path.join(out, "sft")) == sft  # the trainer's reader accepts it
    assert {r["source"] for r in sft} == {source}
    audit = [json.loads(x) for x in open(os.path.join(out, "audit", "part-00000.jsonl"))]
    assert [a["id"] for a in audit] == [r["id"] for r in sft]
    assert all(a["audit"] and all("raw" in e for e in a["audit"]) for a in audit)
    return audit


def test_euroblocks(scripted, tmp_path):
    url, _ = scripted
    out, report, sft, dropped = _run("euroblocks", tmp_path, url)
    _check_accounting(report, sft, dropped)
    audit = _check_outputs(out, sft, "euroblocks")
    # fr and es lack seeds (min 2): the English pairs are translated into them; de has two
    assert report["plan"]["translate_targets"] == ["fr", "es"]
    reasons = {(d["id"], d["drop_reason"]) for d in dropped}
    assert ("fr-empty", "empty_answer") in reasons
    assert ("en-low", "below_threshold") in reasons
    assert ("en-garbled", "judge_unparseable") in reasons
    assert ("de-wrong", "wrong_language:answer") in reasons
    assert ("en-volcano-copy", "exact_duplicate") in reasons
    for d in dropped:  # MinHash's decisions agree with the exact similarity
        if d["drop_reason"].endswith("duplicate"):
            kept = next(r for r in sft if r["id"] == d["duplicate_of"])
            prompt = kept["messages"][0]["content"]
            if d["drop_reason"] == "exact_duplicate":
                assert normalize(d["prompt"]) == normalize(prompt)
            else:
                assert jaccard(d["prompt"], prompt) > 0.3
    assert report["steps"]["translate"]["out"] == 7 + 2 * 5  # 5 English pairs x (fr, es)
    by_lang = {}
    for r in sft:
        by_lang[r["language"]] = by_lang.get(r["language"], 0) + 1
        assert r["judge_score"] >= 7 and r["messages"][0]["role"] == "user"
        assert r.get("translated_from") in (None, "en")
    assert report["per_group"] == dict(sorted(by_lang.items()))
    assert set(by_lang) == {"en", "de", "fr", "es"}
    kept_ids = {r["id"] for r in sft}
    assert {"en-volcano", "en-water", "de-fridge", "en-volcano>es"} <= kept_ids
    steps = [e["step"] for e in audit[0]["audit"]]
    assert steps[0] == "generate_answer" and "judge" in steps


def test_xl_instruct(scripted, tmp_path):
    url, _ = scripted
    out, report, sft, dropped = _run("xl_instruct", tmp_path, url)
    _check_accounting(report, sft, dropped)
    _check_outputs(out, sft, "xl_instruct")
    reasons = {(d["id"], d["drop_reason"]) for d in dropped}
    assert ("fr-lyon", "no_marker") in reasons
    assert {("es-madrid#0", "wrong_language:response"), ("es-madrid#2",
                                                         "wrong_language:response")} <= reasons
    assert report["steps"]["respond"] == {"in": 4, "out": 12, "dropped": {}}
    # the judge scores candidate c as 6 + c: the best per document is candidate 2; top 1 per
    # language keeps the first document of each language (ties in job order)
    assert [(r["id"], r["score"], r["candidate"]) for r in sft] == [
        ("de-berlin#2", 8.0, 2), ("fr-paris#2", 8.0, 2)]
    assert report["steps"]["best_candidate"]["dropped"] == {"not_best_candidate": 6}
    assert report["steps"]["top_k"]["dropped"] == {"below_top_k": 1}
    for r in sft:
        user, assistant = r["messages"]
        assert user["content"].startswith("Please explain") and r["prompt_language"] == "en"
        assert "Variante 2" in assistant["content"]


def test_context_synthesis(scripted, tmp_path):
    from eurollm_jax.tokenizer import ByteTokenizer

    url, _ = scripted
    out, report, sft, dropped = _run("context", tmp_path, url)
    _check_accounting(report, sft, dropped)
    _check_outputs(out, sft, "context")
    assert {(d["id"], d["drop_reason"]) for d in dropped} == {
        ("sum-nomarker", "no_marker"), ("sum-short", "context_too_short")}
    assert report["per_group"] == {"single_doc_qa": 5, "summarization": 1}
    seeds = {s["id"]: s for s in SEEDS["context"]}
    tok = ByteTokenizer()
    for r in sft:
        user, assistant = r["messages"]
        seed = seeds[r["id"]]
        assert assistant["content"] == seed["answer"]
        # its own context and 3 distractors of its task (1 for the lone summarisation seed)
        want = 3 if r["task"] == "single_doc_qa" else 0
        assert r["num_distractors"] == want and len(r["context_ids"]) == want + 1
        assert r["id"] in r["context_ids"]
        assert all(seeds[c]["task"] == r["task"] for c in r["context_ids"])
        for c in r["context_ids"]:  # every chosen context is in the prompt, in that order
            assert f"The fact that matters is this: {seeds[c]['answer']}" in user["content"]
        assert user["content"].endswith(f"Question: {seed['question']}\nAnswer:") or \
            r["task"] == "summarization"
        assert r["length"]["chars"] == len(user["content"]) + len(assistant["content"])
        ids, mask = render_sft_record(tok, r)  # loss on the answer (and its <|im_end|>) only
        trained = [t for t, m in zip(ids, mask) if m]
        assert tok.decode(trained[:-1]) == seed["answer"] and trained[-1] == tok.im_end_id
    orders = {tuple(r["context_ids"]) for r in sft if r["task"] == "single_doc_qa"}
    assert len(orders) == 5  # each sample its own distractors and shuffle
    # the same job again reads its work files: nothing is sent, the files are the same
    counting = scripted[1]
    before = counting.total
    _, again, sft2, _ = _run("context", tmp_path, url)
    assert again["llm_this_run"]["requests"] == 0 and counting.total == before
    assert sft2 == sft and again["llm"] == report["llm"]


def test_malformed_answers_and_llm_errors_never_crash(tmp_path):
    from tests.llm.helpers import CountingApp, scripted_app, serve
    from tests.synthesis.scripted import respond

    def flaky(mode, payload, body):
        text = payload[-1]["content"]
        if "water" in text and text.startswith("You are judging"):
            return None  # HTTP 400 for this judge request
        if "fridge" in text or "Kühlschrank" in text:
            raise RuntimeError("boom")  # HTTP 500 on every retry
        return respond(mode, payload, body)

    app = CountingApp(scripted_app(flaky))
    with serve(app) as url:
        seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS["euroblocks"])
        config = job_config("euroblocks", seeds, url)
        config["llm"]["max_retries"] = 1
        report = run_local(config, str(tmp_path / "out"))
    dropped = [json.loads(x) for x in open(tmp_path / "out" / "dropped.jsonl")]
    reasons = {(d["id"], d["drop_reason"]) for d in dropped}
    assert ("de-fridge", "llm_error:server_error") in reasons
    assert ("en-water", "llm_error:bad_request") in reasons
    assert report["llm"]["errors"]["server_error"] >= 1
    failed = next(d for d in dropped if d["id"] == "de-fridge")
    assert failed["audit"][-1]["errors"][0].startswith("server_error:")
    assert report["sft_records"] > 0


def test_other_settings_refuse_a_rerun_in_the_same_directory(scripted, tmp_path):
    pipeline = "euroblocks"
    url, _ = scripted
    seeds = write_seeds(tmp_path / "seeds.jsonl", SEEDS[pipeline])
    run_local(job_config(pipeline, seeds, url), str(tmp_path / "out"))
    changed = job_config(pipeline, seeds, url)
    changed["euroblocks"]["judge_threshold"] = 5.0
    with pytest.raises(ValueError, match="holds a job with other settings or seeds"):
        run_local(changed, str(tmp_path / "out"))
