"""The runner's pieces: parsers, counters, segments, language check, dedup, seeds and config
errors (no LLM)."""

import pytest

from eurollm_jax.filtering import DedupConfig, jaccard
from eurollm_jax.schema import ConfigError
from eurollm_jax.synthesis import SeedError, SynthesisConfig, make_job
from eurollm_jax.synthesis.steps import (
    BestPerGroup,
    Counters,
    LanguageCheck,
    NearDedup,
    StepContext,
    after_marker,
    parse_judge_score,
    segments,
)
from tests.synthesis.conftest import ANSWERS, write_seeds


@pytest.mark.parametrize("text,marker,want", [
    ("Context: the facts.", "Context:", "the facts."),
    ("Sure!\n**Context:** the facts", "Context:", "the facts"),
    ("**Instruction**: Do X", "Instruction:", "Do X"),
    ("here is an instruction you could use", "Instruction:", None),  # the colon is required
    ("Context:   ", "Context:", None),
    ("", "Context:", None),
    (None, "Context:", None),
])
def test_after_marker(text, marker, want):
    assert after_marker(text, marker) == want


@pytest.mark.parametrize("text,want", [
    ("Good.\nScore: 8", 8.0), ("**Score:** 7/10", 7.0), ("I give it 9/10.", 9.0),
    ("Rating = 6.5", 6.5), ("Score: 4 ... no, Score: 6", 6.0), ("Score: 11", None),
    ("Score: 0", None), ("no number here", None), ("", None), (None, None),
    ("8 out of 10", 8.0),
])
def test_parse_judge_score(text, want):
    assert parse_judge_score(text) == want


def test_counters_merge_and_segments():
    a, b = Counters(), Counters()
    a.step("s")["in"] += 3
    a.drop("s", "x")
    b.step("s")["in"] += 2
    b.drop("s", "x")
    b.drop("s", "y")
    a.merge(b.to_json())
    assert a.to_json() == {"s": {"in": 5, "out": 0, "dropped": {"x": 2, "y": 1}}}
    dd = NearDedup(DedupConfig(), lambda r: r["t"])
    best = BestPerGroup(lambda r: 0, 1, "r", "best")
    lc = LanguageCheck(("t",))
    assert [(scope, [s.name for s in steps]) for scope, steps in
            segments([lc, lc, dd, best, lc])] == [("record", ["language_check"] * 2),
                                                 ("global", ["dedup"]), ("global", ["best"]),
                                                 ("record", ["language_check"])]


def test_language_check_and_dedup_drop_with_reasons():
    ctx = StepContext()
    recs = [{"id": "a", "language": "de", "t": ANSWERS["de"]},
            {"id": "b", "language": "de", "t": ANSWERS["fr"]},
            {"id": "c", "language": "fr", "t": ANSWERS["fr"]}]
    kept = LanguageCheck(("t",), threshold=0.5)(recs, ctx)
    assert [r["id"] for r in kept] == ["a", "c"]
    assert kept[0]["langid"]["t"][0] == "de" and ctx.dropped[0]["langid"]["t"][0] == "fr"
    assert ctx.dropped[0]["drop_reason"] == "wrong_language:t"
    base = "the quick brown fox jumps over the lazy dog near the river bank today " * 3
    texts = [base, base.upper() + "!", base + "and then it rests", "something else entirely"]
    ctx = StepContext()
    kept = NearDedup(DedupConfig(), lambda r: r["t"])(
        [{"id": str(i), "t": t} for i, t in enumerate(texts)], ctx)
    assert [r["id"] for r in kept] == ["0", "3"]
    assert [(d["id"], d["drop_reason"], d["duplicate_of"]) for d in ctx.dropped] == [
        ("1", "exact_duplicate", "0"), ("2", "near_duplicate", "0")]
    assert jaccard(texts[2], texts[0]) > 0.75 > jaccard(texts[3], texts[0])
    assert ctx.counters.to_json()["dedup"] == {
        "in": 4, "out": 2, "dropped": {"exact_duplicate": 1, "near_duplicate": 1}}


def test_bad_seeds_and_config_are_refused_clearly(tmp_path):
    cfg = {"job": {"pipeline": "euroblocks", "seeds": ""}}
    with pytest.raises(SeedError, match="job.seeds is empty"):
        make_job(cfg)
    path = tmp_path / "s.jsonl"
    path.write_text('{"language": "en", "prompt": "hi"}\n{broken\n', encoding="utf-8")
    with pytest.raises(SeedError, match=r"s.jsonl:2: not valid JSON"):
        make_job({"job": {"pipeline": "euroblocks", "seeds": str(path)}})
    write_seeds(path, [{"language": "xx", "prompt": "hi"}])
    with pytest.raises(SeedError, match="language 'xx'"):
        make_job({"job": {"pipeline": "euroblocks", "seeds": str(path)}})
    write_seeds(path, [{"language": "de"}])
    with pytest.raises(SeedError, match=r"s.jsonl:1: needs a non-empty string 'text'"):
        make_job({"job": {"pipeline": "xl_instruct", "seeds": str(path)}})
    write_seeds(path, [{"id": 1, "language": "de", "prompt": "a"},
                       {"id": 1, "language": "de", "prompt": "b"}])
    with pytest.raises(ValueError, match="record id '1' occurs twice"):
        make_job({"job": {"pipeline": "euroblocks", "seeds": str(path)}})
    with pytest.raises(ConfigError, match="job.pipeline: 'euroblock' is not one of"):
        SynthesisConfig.from_mapping({"job": {"pipeline": "euroblock"}})
    with pytest.raises(ConfigError, match="context.templates.qa"):
        SynthesisConfig.from_mapping({"context": {"templates": {"qa": "no placeholders"}}})
    with pytest.raises(ConfigError, match="llm.base_url"):
        SynthesisConfig.from_mapping({}).llm.check_backend("llm")
    write_seeds(path, [{"language": "de", "prompt": "a"}, {"language": "de", "prompt": "b"}])
    job = make_job({"job": {"pipeline": "euroblocks", "seeds": str(path)},
                    "euroblocks": {"languages": ["de", "fr"], "min_per_language": 1}})
    assert [r["id"] for r in job.seeds] == ["s:1", "s:2"]  # ids from the file stem and line
    assert job.plan["translate_targets"] == ["fr"]
