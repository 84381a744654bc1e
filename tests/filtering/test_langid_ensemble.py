"""The filtering step's default identifier (issue 21): fastText first, lingua + py3langid where it
is unsure or names a confusable language; the combination rule; the fallback without lingua;
the language ID benchmark (``python -m launch.bench langid``) on a few languages, and on all 24
(slow).

Sentences: tests/filtering/data/eu_sentences.jsonl (UDHR passages from gflanguages and spaCy's
example sentences); lingua-language-detector is in the test extra."""

import collections
import json
import sys

import pytest

from eurollm_jax.filtering import Document, LanguageID, LanguageIdentifier
from eurollm_jax.filtering import bench_langid, langid
from eurollm_jax.filtering.config import FilterConfig
from eurollm_jax.schema import ConfigError

pytest.importorskip("lingua")

# The languages lid.176 gets most wrong on one sentence, and their neighbours.
HARD = ("sk", "cs", "sl", "hr", "ga", "mt", "da")


def _per_language(identifier, rows):
    preds = identifier.predict([r["text"] for r in rows])
    per = collections.defaultdict(lambda: [0, 0])
    for r, p in zip(rows, preds):
        per[r["lang"]][0] += p.language == r["lang"]
        per[r["lang"]][1] += 1
    return {k: c / n for k, (c, n) in sorted(per.items())}, preds


@pytest.fixture(scope="module")
def hard_rows(eu_sentences):
    return [r for r in eu_sentences if r["lang"] in HARD]


def test_second_pass_beats_lid176_on_the_hard_languages(hard_rows):
    ensemble, preds = _per_language(LanguageID().identifier, hard_rows)
    alone, _ = _per_language(LanguageID(second_pass=()).identifier, hard_rows)
    print("ensemble", ensemble, "lid.176 alone", alone)
    assert sum(ensemble.values()) / len(ensemble) >= 0.97
    assert min(ensemble.values()) >= 0.9  # lid.176 alone: Slovak 0.67
    assert sum(ensemble.values()) > sum(alone.values()) + 0.2
    assert all(set(p.scores) <= {"fasttext", "lingua", "py3langid"} for p in preds)
    # lingua knows no Maltese: Maltese scores come from fastText and py3langid only
    mt = [p for r, p in zip(hard_rows, preds) if r["lang"] == "mt" and len(p.scores) > 1]
    assert mt and all("lingua" not in p.scores for p in mt)


CONFIDENT = ["All human beings are born free and equal in dignity and rights. They are "
             "endowed with reason and conscience and should act towards one another in a "
             "spirit of brotherhood. Everyone has the right to life, liberty and security of "
             "person.",
             "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit "
             "Vernunft und Gewissen begabt und sollen einander im Geist der Brüderlichkeit "
             "begegnen. Jeder hat das Recht auf Leben, Freiheit und Sicherheit der Person."]


def test_the_second_pass_runs_only_where_the_first_is_unsure():
    ident = LanguageID().identifier
    assert all(len(t) >= ident.second_pass_below_chars for t in CONFIDENT)
    preds = ident.predict(CONFIDENT)
    assert [p.language for p in preds] == ["en", "de"]
    assert all(p.scores == {"fasttext": pytest.approx(p.score, abs=1e-4)} for p in preds)
    assert ident.counts == {"texts": 2, "second_pass": 0}
    # Slovak is in a confusable group: always checked, whatever lid.176's confidence
    (sk,) = ident.predict(["Všetci ľudia sa rodia slobodní a sebe rovní, čo sa týka ich "
                           "dôstojnosti a práv."])
    assert sk.language == "sk" and set(sk.scores) == {"fasttext", "py3langid", "lingua"}
    assert ident.counts["second_pass"] == 1


def test_short_texts_always_get_the_second_pass():
    """lid.176 is weak on short inputs (docs/language_id.md): under second_pass_below_chars
    characters the second pass reads a text even when lid.176 is confident."""
    short = [t.split(". ")[0] + "." for t in CONFIDENT]  # one sentence each, lid.176 > 0.9
    ident = LanguageID().identifier
    preds = ident.predict(short)
    assert [p.language for p in preds] == ["en", "de"]
    # py3langid votes; lingua abstains when no other language is plausible
    assert all({"fasttext", "py3langid"} <= set(p.scores) for p in preds)
    assert ident.counts == {"texts": 2, "second_pass": 2}
    off = LanguageID(second_pass_below_chars=0).identifier
    preds = off.predict(short)
    assert all(p.score > 0.9 and set(p.scores) == {"fasttext"} for p in preds)
    assert off.counts["second_pass"] == 0
    # the rule counts characters after whitespace is collapsed, of what the first pass reads
    padded = LanguageID(second_pass_below_chars=80).identifier
    padded.predict([short[0] + " " * 100])
    assert len(short[0]) < 80 and padded.counts["second_pass"] == 1


def test_the_lid176_sentence_the_short_text_rule_fixes():
    """Held-out Slovak UDHR line that lid.176 calls Polish at 0.67 (above `confident`, and
    Polish is in no confusable group): only the short-text rule sends it to the second pass."""
    text = "Vo vedomí že uznanie prirodzenej dôstojnosti"
    (before,) = LanguageID(second_pass_below_chars=0).identifier.predict([text])
    (after,) = LanguageID().identifier.predict([text])
    assert before.language == "pl" and set(before.scores) == {"fasttext"}
    assert after.language == "sk" and "lingua" in after.scores


class _Fixed:
    """An identifier double with a fixed distribution and a known label set."""

    def __init__(self, name, dist, known=None):
        self.name, self.dist, self.known = name, dist, known

    def distribution(self, text, candidates=None):
        return dict(self.dist)


def test_combination_averages_only_the_identifiers_that_know_a_language():
    ident = LanguageIdentifier("fasttext", candidates=("mt", "it", "en"),
                               second_pass=("py3langid",))
    ident._first = _Fixed("fasttext", {"mt": 0.5, "it": 0.3, "en": 0.2})
    ident._others = [_Fixed("py3langid", {"mt": 0.9, "it": 0.1},
                            known=frozenset({"mt", "it", "en"})),
                     _Fixed("blind", {"it": 0.8, "en": 0.2}, known=frozenset({"it", "en"}))]
    (p,) = ident.predict(["Il-bnedmin kollha jitwieldu"])  # 0.5 < confident: second pass
    assert p.language == "mt"
    assert p.score == pytest.approx((0.5 + 0.9) / 2)  # "blind" cannot name Maltese
    assert p.scores == {"fasttext": 0.5, "py3langid": 0.9}
    assert ident._combine([("a", {"it": 0.3}, None), ("b", {"it": 0.8}, frozenset({"it"})),
                           ("c", {"en": 1.0}, frozenset({"en"}))])["it"] == pytest.approx(0.55)


def test_without_lingua_the_second_pass_falls_back_with_a_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "lingua", None)  # import lingua -> ImportError
    step = LanguageID()
    with pytest.warns(RuntimeWarning, match="pip install lingua-language-detector"):
        step.setup()
    assert [m.name for m in step.identifier._others] == ["py3langid"]
    kept, _ = step([Document("sl", "Vsakdo ima pravico do življenja, prostosti in osebne "
                                   "varnosti. Nihče ne sme biti zasužnjen ali podložen.")])
    assert kept and kept[0].language == "sl"
    assert set(kept[0].metadata["language_scores"]) == {"fasttext", "py3langid"}


def test_probabilities_are_recorded_on_each_document(eu_sentences):
    text = " ".join(r["text"] for r in eu_sentences if r["lang"] == "sl")[:600]
    kept, _ = LanguageID()([Document("sl", text)])
    meta = kept[0].metadata
    assert meta["language"] == "sl" and meta["language_score"] >= 0.65
    assert set(meta["language_scores"]) == {"fasttext", "py3langid", "lingua"}
    assert meta["language_score"] == pytest.approx(
        sum(meta["language_scores"].values()) / 3, abs=1e-3)
    json.dumps(meta)  # written to the output shards


@pytest.mark.parametrize("values, message", [
    ({"second_pass": ["lingva"]}, "language_id.second_pass[0]: 'lingva' is not one of lingua, "
                                  "py3langid, fasttext; did you mean \"lingua\""),
    ({"confident": 2}, "language_id.confident: must be a probability"),
    ({"confusable": ["cs"]}, "language_id.confusable[0]: a group is two or more"),
    ({"second_pass_chars": 0}, "language_id.second_pass_chars: must be positive"),
    ({"second_pass_below_chars": -1}, "language_id.second_pass_below_chars: must be >= 0"),
])
def test_second_pass_settings_are_checked(values, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FilterConfig.from_mapping({"language_id": values})


def test_the_pipeline_builds_the_configured_identifier():
    from eurollm_jax.filtering.pipeline import build_steps

    (step,) = build_steps({"language_id": {"second_pass": "py3langid", "confident": 0.5,
                                           "thresholds": {"ga": 0.4},
                                           "second_pass_below_chars": 80},
                           "heuristics": {"enabled": False}, "pii": {"enabled": False}})
    assert step.identifier.second_pass == ("py3langid",)
    assert step.identifier.second_pass_below_chars == 80
    assert step.identifier.confident == 0.5 and step.thresholds == {"ga": 0.4}
    assert step.identifier.label_groups == langid.SECOND_PASS_LABEL_GROUPS
    (off,) = build_steps({"language_id": {"second_pass": []}, "heuristics": {"enabled": False},
                          "pii": {"enabled": False}})
    assert off.identifier.second_pass == () and off.identifier.label_groups == {"hr": ("sh", "bs")}


def test_other_stages_share_the_filter_identifier():
    """filter_identifier: the step's two-pass identifier with the label over every language
    (synthesis' LanguageCheck and XL-AlpacaEval use it), or restricted to candidates."""
    from eurollm_jax.evaluation.xl_alpacaeval import _language_identifier
    from eurollm_jax.synthesis.steps import LanguageCheck

    ident = langid.filter_identifier()
    step = LanguageID()
    assert ident.second_pass == step.identifier.second_pass == ("lingua", "py3langid")
    assert ident.label_groups == step.identifier.label_groups
    assert ident.candidates is None and step.identifier.candidates == frozenset(step.languages)
    ru = "Все люди рождаются свободными и равными в своем достоинстве и правах."
    sk = "Vo vedomí že uznanie prirodzenej dôstojnosti"
    assert [p.language for p in ident.predict([ru, sk])] == ["ru", "sk"]
    assert _language_identifier()([ru, sk]) == ["ru", "sk"]
    assert isinstance(LanguageCheck(("t",))._identifier(), LanguageIdentifier)
    assert LanguageCheck(("t",))._identifier().second_pass == ident.second_pass
    off = langid.filter_identifier(FilterConfig.from_mapping(
        {"language_id": {"second_pass": []}}).language_id, candidates=("sk", "cs"))
    assert off.second_pass == () and off.label_groups == langid.DEFAULT_LABEL_GROUPS
    assert off.candidates == frozenset({"sk", "cs"})


def test_benchmark_on_a_few_languages(tmp_path):
    out = bench_langid.run(str(tmp_path), sources=("udhr",), identifiers=("filter", "fasttext"),
                           languages=("sk", "cs", "ga", "gd"))
    r = out["results"]
    assert set(r) == {"filter", "fasttext"}
    short = r["filter"]["scores"]["short"]
    assert set(short["recall"]) == {"sk", "cs", "ga"}  # gd is a neighbour: no recall row
    assert short["support"]["gd"] > 0 and 0.0 <= short["neighbours_kept"] <= 1.0
    assert short["macro_accuracy"] >= r["fasttext"]["scores"]["short"]["macro_accuracy"]
    assert set(r["filter"]["pairs"]) == {"sk/cs", "hr/sr/bs/sl", "da/nb/nn/sv", "ga/gd", "mt"}
    md = (tmp_path / "report.md").read_text()
    assert "| filter |" in md and "Confusions on short inputs" in md and "ga/gd:" in md
    png = (tmp_path / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["meta"]["texts"] == out["meta"]["texts"]


def test_benchmark_texts_cover_every_eu_language_and_length():
    rows = bench_langid.evaluation_texts(sources=("udhr",))
    langs = {r["lang"] for r in rows}
    assert set(bench_langid.EU_LANGUAGES) <= langs and set(bench_langid.NEIGHBOURS) <= langs
    by = collections.Counter((r["lang"], r["length"]) for r in rows)
    assert all(by[(x, "short")] >= 2 and by[(x, "medium")] >= 1 for x in bench_langid.EU_LANGUAGES)
    assert all(len(r["text"].split()) >= 4 for r in rows)
    # the whole Declaration for every EU language (vendored), not the gflanguages passages
    for lang in bench_langid.EU_LANGUAGES:
        paragraphs = bench_langid.udhr_paragraphs(lang)
        assert len(paragraphs) >= 55 and by[(lang, "short")] >= 60, lang
    assert len(bench_langid.udhr_paragraphs("sr")) < 20  # neighbours: the passages


@pytest.mark.slow
def test_benchmark_all_24_languages(tmp_path):
    """Issue 21's acceptance measure: one-sentence macro accuracy >= 98% and every EU language
    >= 95% (the filter step's identifier on the UDHR + spaCy text; numbers per language in
    report.md)."""
    pytest.importorskip("spacy")
    out = bench_langid.run(str(tmp_path), identifiers=("filter", "fasttext-eu"))
    f = out["results"]["filter"]["scores"]
    print(json.dumps({k: round(v, 3) for k, v in f["short"]["recall"].items()}))
    assert len(f["short"]["recall"]) == 24
    assert f["short"]["macro_accuracy"] >= 0.98
    assert min(f["short"]["recall"].values()) >= 0.95
    assert f["medium"]["macro_accuracy"] >= 0.99 and f["long"]["macro_accuracy"] >= 0.99
    assert (f["short"]["macro_accuracy"]
            > out["results"]["fasttext-eu"]["scores"]["short"]["macro_accuracy"])
