"""Final-answer parsing per language: decimal and thousands separators, scripts, markers."""

import pytest

from eurollm_jax.prm import (
    answers_match,
    extract_answer,
    extract_boxed,
    find_numbers,
    math_answers_match,
    parse_number,
)


@pytest.mark.parametrize("text, lang, want", [
    ("3,5", "de", 3.5), ("3,5", "fr", 3.5), ("3,5", "es", 3.5), ("3,5", "ru", 3.5),
    ("3.5", "en", 3.5), ("3.5", "zh", 3.5), ("3.5", "sw", 3.5),
    ("1.234", "de", 1234), ("1.234,5", "de", 1234.5), ("2.000", "es", 2000),
    ("1,234", "en", 1234), ("1,234.5", "en", 1234.5), ("12,345,678", "en", 12345678),
    ("1 234,5", "fr", 1234.5), ("1\u00a0234", "fr", 1234), ("1\u202f234,25", "fr", 1234.25),
    ("1 000 000", "ru", 1000000), ("1'234", "de", 1234),
    ("1,23,456", "bn", 123456), ("১২৩", "bn", 123), ("๔๒", "th", 42), ("１２", "ja", 12),
    ("-7", "en", -7), ("\u22123,25", "ru", -3.25),
    ("3.5", "de", 3.5),  # a point that cannot group three digits is a decimal point
])
def test_one_number(text, lang, want):
    assert parse_number(text, lang) == pytest.approx(want)


def test_separators_of_the_other_convention_are_not_decimals():
    assert find_numbers("3,5", "en") == [3, 5]  # a list in English, never 3.5
    assert find_numbers("3-5", "en") == [3, 5]  # a minus between operands is not a sign
    assert find_numbers("1.234 und 2,5", "de") == [1234, 2.5]
    assert find_numbers("1,234", "de") == [1.234]


@pytest.mark.parametrize("text, lang, want", [
    ("Step 1: 2 + 3 = 5. The answer is 5.", "en", 5),
    ("Er hat 1.500 Euro, also 3,5 Kisten. Die Antwort lautet 1.250,5.", "de", 1250.5),
    ("Il reste 12 pommes. La réponse est 7,5 kg.", "fr", 7.5),
    ("La respuesta es 1.000", "es", 1000),
    ("Всего 3 ящика. Ответ: 18", "ru", 18),
    ("Jibu ni 42.", "sw", 42),
    ("所以答案是 3.5。", "zh", 3.5),
    ("答えは 1,200 です。", "ja", 1200),
    ("no marker: 3 apples and 4 pears make 7", "en", 7),
    ("The answer is 5. Then 2 more steps with 9.", "en", 5),  # the number after the marker
])
def test_extract_answer(text, lang, want):
    assert extract_answer(text, lang) == pytest.approx(want)


def test_unparseable_and_matching():
    assert extract_answer("no number here", "en") is None
    assert extract_answer("", "de") is None
    assert answers_match(3.5, "3.5") and not answers_match(3.5, "35")
    assert not answers_match(None, "3")


def test_math_answers():
    assert extract_boxed(r"so $\boxed{\frac{1}{2}}$.") == r"\frac{1}{2}"
    assert extract_boxed(r"\boxed{a{b}c} then \boxed{7}") == "7"
    assert extract_boxed("none") is None
    assert math_answers_match(r"\dfrac12", r"\frac{1}{2}")
    assert math_answers_match(r"\frac{1}{2}", "0.5")
    assert math_answers_match(r"10\%", "10")
    assert math_answers_match(r"\text{(B)}", "(B)")
    assert math_answers_match("1,000", "1000")
    assert not math_answers_match(r"\frac{1}{3}", "0.5")
    assert not math_answers_match(None, "1")
