"""Each heuristic rule fires on a page built to trip it and not on clean prose; per-language
overrides; C4 rewrites kept pages to their kept lines."""

import pytest

from eurollm_jax.filtering import (
    C4QualityFilter,
    Document,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

PROSE = ("The history of the printing press is closely tied to the spread of literacy in Europe. "
         "Before movable type, books were copied by hand, which made them rare and expensive. "
         "With the new machines, printers could produce many copies of the same text quickly. "
         "This changed how people learned, because students and teachers could own the same books. "
         "It also helped scientists to share their results and to build on the work of others.")


def doc(text, lang="en"):
    return Document("d", text, {"language": lang})


def test_clean_prose_is_kept():
    assert GopherQualityFilter().filter(doc(PROSE)) is None


@pytest.mark.parametrize("text,reason", [
    ("word " * 20, "gopher_short_doc"),
    (" ".join(["#news #today people should read the papers with care"] * 10),
     "gopher_too_many_hashes"),
    ("\n".join(["- several items belong to the shopping list"] * 60), "gopher_too_many_bullets"),
    (" ".join(["123 456 789 the and"] * 30), "gopher_below_alpha_threshold"),
    (" ".join(["lorem ipsum dolor sit amet consectetur"] * 15), "gopher_enough_stop_words"),
])
def test_gopher_quality_rules(text, reason):
    assert GopherQualityFilter().filter(doc(text)) == reason


def test_gopher_repetition_rules():
    f = GopherRepetitionFilter()
    assert f.filter(doc("")) == "empty"
    assert f.filter(doc("\n\n".join(["Same paragraph here."] * 5))) == "dup_para_frac"
    assert f.filter(doc("\n".join(["line one is here", "line two", "line one is here",
                                   "line one is here"]))) == "dup_line_frac"
    assert f.filter(doc(PROSE)) is None
    assert f.filter(doc(PROSE + " " + " ".join(["buy cheap shoes now"] * 20))) in (
        "top_2_gram", "top_3_gram", "top_4_gram", "duplicated_5_n_grams")


def test_c4_rules_and_rewrite():
    f = C4QualityFilter()
    lines = [s + "." for s in PROSE.split(". ")] + ["Menu", "Please enable javascript now.",
                                                    "Read our privacy policy."]
    d = doc("\n".join(lines))
    assert f.filter(d) is None
    assert "Menu" not in d.text and "javascript" not in d.text and "privacy" not in d.text
    assert f.filter(doc(PROSE + "\nLorem ipsum dolor sit amet.")) == "lorem_ipsum"
    assert f.filter(doc(PROSE + "\nThe object {a: 1} is a literal.")) == "curly_bracket"
    assert f.filter(doc("One sentence only here.")) == "too_few_sentences"


def test_fineweb_rules():
    f = FineWebQualityFilter()
    assert f.filter(doc("\n\n")) == "empty"
    assert f.filter(doc("\n".join(["no punctuation at the end of this line"] * 3 + ["x."]))) in (
        "line_punct_ratio", "char_dup_ratio")
    assert f.filter(doc("\n".join(f"Short {i}." for i in range(20)))) == "short_line_ratio"
    assert f.filter(doc(PROSE)) is None


def test_per_language_overrides():
    long_words = " ".join(["Kansainvälisyyskasvatuksellisuus järjestelmällisyydessään on ja ei"] * 12)
    assert GopherQualityFilter().filter(doc(long_words, "fi")) == "gopher_above_avg_threshold"
    relaxed = GopherQualityFilter(per_language={"fi": {"max_avg_word_length": 15}})
    assert relaxed.filter(doc(long_words, "fi")) is None
    assert relaxed.filter(doc(long_words, "en")) == "gopher_above_avg_threshold"
    with pytest.raises(TypeError, match="unknown"):
        GopherQualityFilter(per_language={"fi": {"max_avg_len": 1}})


def test_multilingual_documents_pass(eu_sentences):
    """Real UDHR / example sentences of every EU language survive Gopher quality and C4."""
    from tests.filtering.conftest import multilingual_records

    for r in multilingual_records(eu_sentences):
        d = doc(r["text"], r["lang_gold"])
        assert GopherQualityFilter().filter(d) is None, r["lang_gold"]
        assert C4QualityFilter(filter_no_terminal_punct=False).filter(d) is None, r["lang_gold"]
