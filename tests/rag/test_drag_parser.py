"""The DRAG parser on a table of well-formed and malformed generations: the scored answer span
and the counted issues of each, then the issue counts over the whole table."""

import pytest

from eurollm_jax.rag import SECTIONS, VARIANTS, count_issues, drag_prompt, parse_drag
from eurollm_jax.rag.corpus import Passage

FULL = ("#Extraction: [1] Paris is the capital of France.\n"
        "#Explanation: [1] says \"Paris is the capital\".\n"
        "#Dialectic Argumentation: only [1] is relevant; no document disagrees.\n"
        "#Answer: Paris\n")

# (name, generation, expected answer, expected issues)
TABLE = [
    ("well_formed", FULL, "Paris", []),
    ("markdown_headers", FULL.replace("#Extraction:", "## Extraction:")
     .replace("#Answer:", "**#Answer:**"), "Paris", []),
    ("case_and_spacing", FULL.replace("#Dialectic Argumentation:", "# dialectic  argumentation :")
     .replace("#Answer:", "#ANSWER :"), "Paris", []),
    ("answer_on_next_line", FULL.replace("#Answer: Paris", "#Answer:\n\n  Paris  \nmore text"),
     "Paris", []),
    ("missing_explanation", FULL.replace("#Explanation: [1] says \"Paris is the capital\".\n", ""),
     "Paris", ["missing:Explanation"]),
    ("missing_everything_but_answer", "#Answer: Lyon", "Lyon",
     ["missing:Extraction", "missing:Explanation", "missing:Dialectic Argumentation"]),
    ("missing_answer", FULL.split("#Answer:")[0], "", ["missing:Answer"]),
    ("untagged_answer", FULL.replace("#Answer: Paris", "Answer: Paris"), "Paris",
     ["missing:Answer", "untagged_answer"]),
    ("empty_answer", FULL.replace("#Answer: Paris", "#Answer:"), "", ["empty_answer"]),
    ("reordered", "#Answer: Paris\n#Extraction: x\n#Explanation: y\n"
     "#Dialectic Argumentation: z\n", "Paris", ["reordered"]),
    ("explanation_before_extraction", "#Explanation: y\n#Extraction: x\n"
     "#Dialectic Argumentation: z\n#Answer: Rome\n", "Rome", ["reordered"]),
    ("repeated_answer_last_counts", FULL + "#Answer: Marseille\n", "Marseille",
     ["repeated:Answer"]),
    ("repeated_extraction", FULL.replace("#Explanation:", "#Extraction: again\n#Explanation:"),
     "Paris", ["repeated:Extraction"]),
    ("none", None, "", [f"missing:{s}" for s in SECTIONS]),
    ("no_headers_at_all", "I think it is Paris.", "", [f"missing:{s}" for s in SECTIONS]),
    ("hash_inside_a_line_is_not_a_header", FULL.replace(
        "only [1] is relevant", "only [1] is relevant (see #Answer: below)"), "Paris", []),
]


@pytest.mark.parametrize("name,text,answer,issues", TABLE, ids=[t[0] for t in TABLE])
def test_parse_drag_table(name, text, answer, issues):
    parse = parse_drag(text)
    assert parse.answer == answer
    assert sorted(parse.issues) == sorted(issues)
    assert parse.well_formed == (not issues)


def test_issue_counts_over_the_table():
    counts = count_issues([parse_drag(t[1]) for t in TABLE])
    assert counts["total"] == len(TABLE)
    assert counts["well_formed"] == 5
    assert counts["missing:Answer"] == 4   # missing_answer, untagged_answer, none, no_headers
    assert counts["reordered"] == 2
    assert counts["repeated:Answer"] == 1 and counts["repeated:Extraction"] == 1
    assert counts["untagged_answer"] == 1 and counts["empty_answer"] == 1


def test_ablation_variants_expect_their_own_sections():
    no_expl = FULL.replace("#Explanation: [1] says \"Paris is the capital\".\n", "")
    assert parse_drag(no_expl, VARIANTS["no_explanation"]).issues == []
    no_arg = FULL.replace("#Dialectic Argumentation: only [1] is relevant; no document "
                          "disagrees.\n", "")
    assert parse_drag(no_arg, VARIANTS["no_argumentation"]).issues == []
    assert parse_drag(no_arg).issues == ["missing:Dialectic Argumentation"]


def test_prompt_asks_for_the_sections_in_order():
    docs = [Passage("a", "Paris ist die Hauptstadt.", "de"), Passage("b", "Lyon.", "fr")]
    prompt = drag_prompt("Quelle est la capitale ?", "fr", docs)
    positions = [prompt.index(f"#{s}:") for s in SECTIONS]
    assert positions == sorted(positions)
    assert "[1] (German) Paris ist die Hauptstadt." in prompt and "in French" in prompt
    ablated = drag_prompt("q", "fr", docs, "no_argumentation")
    assert "#Dialectic Argumentation:" not in ablated and "#Explanation:" in ablated
    with pytest.raises(ValueError, match="variant"):
        drag_prompt("q", "fr", docs, "no_answer")
