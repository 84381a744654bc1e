"""Final answers from generated text, per language: numbers with the language's separators.

Decimal separators: a comma in most continental European languages (de, fr, es, ru, it,
pt, nl, pl, ...: "3,5" is 3.5), a point elsewhere (en, zh, ja, th, sw, bn, te: "3.5").
Thousands (group) separators: the other mark of the two, plus the spaces each language
uses ("1.234,5" de, "1 234,5" fr/ru with a space, no-break space or narrow no-break space,
"1,234.5" en, "1,23,456" lakh grouping in bn/te/hi); a group must have exactly three digits
(two in a lakh grouping, except the last), so "3,5" in English is 3 and 5, never 3.5. In a
comma-decimal language a point that cannot be a group separator ("3.5") is read as a decimal
point, since models often write it so. Digits of any script (Bengali, Thai, full-width)
count. A minus sign (``-`` or U+2212) makes a number negative when it is not between two
operands ("3-5" is 3 and 5).

``extract_answer(text, language)``: the number after the last answer marker of the language
("The answer is", "Die Antwort lautet", "Réponse :", "答案是", ...; any language's markers
are tried) or else the last number of the text. ``answers_match`` compares numerically.
For MATH-style answers ``extract_boxed`` takes the last ``\\boxed{...}`` and
``math_answers_match`` compares normalised LaTeX strings (numerically when both are
numbers or fractions).
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction

COMMA_DECIMAL = frozenset(
    "de fr es ru it pt nl pl cs sk sl hr ro bg da sv fi et lv lt hu el uk ca gl eu tr id vi "
    "az be kk sr bs mk is no nb nn".split())
SPACE_GROUPS = frozenset("fr ru pl cs sk sv fi et lv lt hu uk no nb nn bg es pt it".split())
LAKH = frozenset("bn te hi ta mr gu kn ml pa ne".split())
SPACES = "\u00a0\u202f\u2009"

ANSWER_MARKERS = {
    "en": ("the answer is", "answer:", "answer is"),
    "de": ("die antwort lautet", "die antwort ist", "antwort:"),
    "fr": ("la réponse est", "réponse :", "réponse:"),
    "es": ("la respuesta es", "respuesta:"),
    "ru": ("ответ:", "ответ —", "ответ"),
    "sw": ("jibu ni", "jibu:"),
    "zh": ("答案是", "答案：", "答案:"),
    "ja": ("答えは", "答え：", "答え:"),
    "th": ("คำตอบคือ", "คำตอบ:"),
    "bn": ("উত্তর হল", "উত্তর:"),
    "te": ("సమాధానం", "జవాబు"),
}


def separators(language: str) -> tuple[str, str]:
    """(decimal separator, group separators) of ``language`` (an ISO 639-1 code)."""
    lang = (language or "en").lower().split("-")[0].split("_")[0]
    if lang in COMMA_DECIMAL:
        groups = "." + SPACES + ("'’" if lang == "de" else "") + (" " if lang in SPACE_GROUPS
                                                                  else "")
        return ",", groups
    return ".", "," + SPACES


def _digits(s: str) -> str:
    return "".join(str(unicodedata.decimal(c)) if c.isdigit() else c for c in s)


def _number_pattern(language: str) -> re.Pattern:
    dec, groups = separators(language)
    g = re.escape(groups)
    lang = (language or "en").lower()[:2]
    grouped = rf"\d{{1,3}}(?:[{g}]\d{{3}})+" if lang not in LAKH else \
        rf"\d{{1,3}}(?:[{g}]\d{{2}})*(?:[{g}]\d{{3}})"
    frac = rf"{re.escape(dec)}(?P<frac>\d+)"
    if dec == ",":
        frac = r"(?:,|\.(?!\d{3}(?!\d)))(?P<frac>\d+)"  # a point not before a group of 3
    sign = r"(?P<sign>(?<![\w)\]])[-\u2212])?"
    return re.compile(rf"{sign}(?<!\d)(?P<int>{grouped}|\d+)(?:{frac})?(?!\d)")


def find_numbers(text: str, language: str = "en") -> list[float]:
    """Every number of ``text`` read with ``language``'s separators, in order."""
    dec, groups = separators(language)
    out = []
    for m in _number_pattern(language).finditer(text or ""):
        s = re.sub(rf"[{re.escape(groups)}]", "", m.group("int"))
        if m.group("frac"):
            s += "." + m.group("frac")
        if m.group("sign"):
            s = "-" + s
        try:
            out.append(float(_digits(s)))
        except ValueError:
            continue
    return out


def parse_number(text: str, language: str = "en") -> float | None:
    """The one number ``text`` holds (surrounding spaces and punctuation allowed), else None."""
    nums = find_numbers(text, language)
    return nums[0] if len(nums) == 1 else None


def extract_answer(text: str, language: str = "en") -> float | None:
    """The final numeric answer of a solution (module docstring), or None (unparseable)."""
    if not text:
        return None
    low = text.lower()
    markers = ANSWER_MARKERS.get((language or "en").lower()[:2], ()) + tuple(
        m for ms in ANSWER_MARKERS.values() for m in ms)
    best = -1
    for marker in markers:
        i = low.rfind(marker)
        if i >= 0 and i + len(marker) > best:
            best = i + len(marker)
    if best >= 0:
        after = find_numbers(text[best:], language)
        if after:
            return after[0]
    nums = find_numbers(text, language)
    return nums[-1] if nums else None


def answers_match(predicted: float | None, gold: float | str | None, language: str = "en",
                  rel_tol: float = 1e-6) -> bool:
    if predicted is None or gold is None:
        return False
    if isinstance(gold, str):
        gold = parse_number(gold, language)
        if gold is None:
            return False
    return math.isclose(float(predicted), float(gold), rel_tol=rel_tol, abs_tol=1e-9)


# ------------------------------------------------------------------ MATH-style answers
def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced."""
    if not text:
        return None
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _unwrap(s: str, command: str) -> str:
    while True:
        i = s.find(command + "{")
        if i < 0:
            return s
        depth, j = 0, i + len(command)
        for j in range(i + len(command), len(s)):
            if s[j] == "{":
                depth += 1
            elif s[j] == "}":
                depth -= 1
                if depth == 0:
                    break
        s = s[:i] + s[i + len(command) + 1 : j] + s[j + 1 :]


def normalize_math_answer(answer: str) -> str:
    s = (answer or "").strip().strip("$").strip()
    for cmd in ("\\text", "\\textbf", "\\mathrm", "\\mbox", "\\boxed"):
        s = _unwrap(s, cmd)
    for a, b in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""),
                 ("\\ ", ""), ("dfrac", "frac"), ("tfrac", "frac"), ("^\\circ", ""),
                 ("^{\\circ}", ""), ("\\%", ""), ("%", ""), ("\\$", ""), (" ", "")):
        s = s.replace(a, b)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    return s.rstrip(".")


def _math_value(s: str) -> Fraction | None:
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if m:
        den = int(m.group(3))
        return None if den == 0 else Fraction(int(m.group(2)), den) * (-1 if m.group(1) else 1)
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m and int(m.group(2)):
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", s.replace(",", "") if re.fullmatch(
        r"-?\d{1,3}(,\d{3})+(\.\d+)?", s) else s)
    if m:
        return Fraction(m.group(0)) if "." not in m.group(0) else Fraction(float(m.group(0)))
    return None


def math_answers_match(predicted: str | None, gold: str | None) -> bool:
    if predicted is None or gold is None:
        return False
    a, b = normalize_math_answer(predicted), normalize_math_answer(gold)
    if a == b:
        return True
    va, vb = _math_value(a), _math_value(b)
    return va is not None and vb is not None and abs(float(va - vb)) <= 1e-9 * max(1, abs(vb))
