"""The drop report's per-language removed fractions and its bias warning (issue 21): a corpus
where one language is removed disproportionately warns, a balanced one does not; the ratio,
the minimum excess and the minimum size are configurable; the whole job writes the warning."""

import json

import pytest

from eurollm_jax.filtering import report, run_local
from eurollm_jax.filtering.config import FilterConfig, ReportSection
from eurollm_jax.schema import ConfigError

from .conftest import sentences_by_language, write_jsonl


def _stats(counts):
    """``{lang: (documents, {reason: n})}`` -> ShardStats."""
    s = report.ShardStats()
    for lang, (n, drops) in counts.items():
        reasons = [r for r, k in drops.items() for _ in range(k)]
        for i in range(n):
            s.add({"metadata": {"language": lang}, "text": "x" * 10,
                   "drop_reason": reasons[i] if i < len(reasons) else None})
    return s


BALANCED = {lang: (100, {"language_id:below_threshold": 5, "gopher_quality:short": 20})
            for lang in ("de", "fr", "es", "it", "pl")}


def test_removed_fractions_per_language_and_step():
    s = report.summarize(_stats(BALANCED | {"sl": (50, {"language_id:below_threshold": 30})}))
    row = next(r for r in s["languages"] if r["language"] == "sl")
    assert row["removed_fraction"] == {"all": 0.6, "language_id": 0.6}
    assert s["median_removed_fraction"]["language_id"] == pytest.approx(0.05)
    assert s["median_removed_fraction"]["all"] == pytest.approx(0.25)


def test_warning_fires_for_the_disproportionate_language_only():
    s = report.summarize(_stats(BALANCED | {"sl": (50, {"language_id:below_threshold": 30})}))
    warned = {(w["language"], w["step"]) for w in s["bias_warnings"]}
    assert warned == {("sl", "language_id"), ("sl", "all")}
    w = next(w for w in s["bias_warnings"] if w["step"] == "language_id")
    assert w["fraction"] == 0.6 and w["median"] == 0.05 and w["ratio"] == 12.0
    assert "`language_id` removes 60.0% of the 50 `sl` documents, 12.0x" in report.warning_text(w)
    assert report.summarize(_stats(BALANCED))["bias_warnings"] == []


def test_ratio_excess_and_size_are_configurable():
    stats = _stats(BALANCED | {"ga": (40, {"language_id:below_threshold": 8})})  # 20% vs 5%
    assert {w["language"] for w in report.summarize(stats)["bias_warnings"]} == {"ga"}
    assert report.summarize(stats, ReportSection(bias_ratio=5.0))["bias_warnings"] == []
    assert report.summarize(stats, ReportSection(min_excess=0.2))["bias_warnings"] == []
    assert report.summarize(stats, ReportSection(min_documents=41))["bias_warnings"] == []
    with pytest.raises(ConfigError, match="report.bias_ratio: must be >= 1"):
        FilterConfig.from_mapping({"report": {"bias_ratio": 0.5}})


def test_write_report_puts_the_warning_first(tmp_path, capsys):
    stats = _stats(BALANCED | {"mt": (30, {"gopher_repetition:top_2_gram": 25})})
    summary = report.write_report(stats, str(tmp_path), {"report": {"bias_ratio": 3}})
    assert summary["bias_settings"]["bias_ratio"] == 3.0
    md = (tmp_path / "report.md").read_text()
    assert md.index("**Warning") < md.index("| language |")
    assert "`gopher_repetition` removes 83.3% of the 30 `mt` documents" in md
    assert "| median language |" in md
    err = capsys.readouterr().err
    assert "WARNING: gopher_repetition removes 83.3% of the 30 mt documents" in err
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["bias_warnings"][0]["language"] == "mt"


def test_the_filter_job_warns_on_a_constructed_corpus(tmp_path, eu_sentences):
    """Six languages, ten documents each; a URL blocklist removes most Slovenian documents."""
    by = sentences_by_language(eu_sentences)
    records = []
    for lang in ("de", "fr", "es", "pl", "it", "sl"):
        sents = by[lang]
        for i in range(10):
            text = " ".join(sents[(i + k) % len(sents)] for k in range(4))
            url = f"https://{'spam.example' if lang == 'sl' and i < 8 else 'ok.example'}/{i}"
            records.append({"id": f"{lang}-{i}", "text": text, "url": url})
    path = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    summary = run_local([path], str(out), {
        "url_blocklist": {"domains": ["spam.example"]}, "heuristics": {"enabled": False},
        "dedup": {"exact": False, "near": False}, "runner": {"progress": False}},
        num_workers=1)
    warned = {(w["language"], w["step"]) for w in summary["bias_warnings"]}
    assert warned == {("sl", "url_blocklist"), ("sl", "all")}
    md = (out / "report.md").read_text()
    assert "`url_blocklist` removes 80.0% of the 10 `sl` documents" in md
