"""MGSM (per-language TSV, JSON lines, JSON) and MATH500 (JSONL) readers on fixtures in the
published layouts."""

import json

import pytest

from eurollm_jax.prm import BenchmarkFormatError, read_math500, read_mgsm


@pytest.fixture
def mgsm_dir(tmp_path):
    d = tmp_path / "mgsm"
    d.mkdir()
    # url-nlp/mgsm layout: no header, question<TAB>answer
    (d / "mgsm_en.tsv").write_text(
        "Janet’s ducks lay 16 eggs per day. How much does she make?\t18\n"
        "A robe takes 2 bolts of blue fiber and half that much white fiber. How many?\t3\n",
        encoding="utf-8")
    (d / "mgsm_de.tsv").write_text(
        "Janets Enten legen 16 Eier pro Tag. Wie viel verdient sie?\t18\n", encoding="utf-8")
    (d / "mgsm_zh.jsonl").write_text(json.dumps(
        {"question": "珍妮特的鸭子每天下 16 个蛋。", "answer": None, "answer_number": 18,
         "equation_solution": None}, ensure_ascii=False) + "\n", encoding="utf-8")
    (d / "mgsm_fr.json").write_text(json.dumps(
        [{"question": "Les canards de Janet pondent 16 œufs.", "answer_number": 18}]),
        encoding="utf-8")
    return d


def test_mgsm_directory_and_files(mgsm_dir):
    qs = read_mgsm(str(mgsm_dir))
    assert sorted({q.language for q in qs}) == ["de", "en", "fr", "zh"]
    en = [q for q in qs if q.language == "en"]
    assert len(en) == 2 and en[0].answer == "18" and en[1].question.endswith("How many?")
    assert [q.language for q in read_mgsm(str(mgsm_dir), languages=("de",))] == ["de"]
    zh = read_mgsm(str(mgsm_dir / "mgsm_zh.jsonl"))
    assert zh[0].answer == "18" and zh[0].kind == "number"
    with pytest.raises(FileNotFoundError, match="sw"):
        read_mgsm(str(mgsm_dir), languages=("sw",))


def test_mgsm_bad_lines(tmp_path):
    bad = tmp_path / "mgsm_es.tsv"
    bad.write_text("question only\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="mgsm_es.tsv:1"):
        read_mgsm(str(bad))
    bad.write_text("q\tnot a number\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="not a number"):
        read_mgsm(str(bad))
    other = tmp_path / "questions.tsv"
    other.write_text("q\t1\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="language"):
        read_mgsm(str(other))
    assert read_mgsm(str(other), language="ja")[0].language == "ja"


def test_math500(tmp_path):
    rows = [{"problem": "Convert the point $(0,3)$ to polar coordinates.",
             "solution": "... $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$",
             "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus",
             "level": 2, "unique_id": "test/precalculus/807.json"},
            {"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "answer": "2",
             "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    qs = read_math500(str(path))
    assert [q.id for q in qs] == ["test/precalculus/807.json", "test/prealgebra/1.json"]
    assert qs[0].kind == "math" and qs[0].language == "en" and qs[1].answer == "2"
    d = tmp_path / "multi"
    (d / "de").mkdir(parents=True)
    (d / "de" / "test.jsonl").write_text(json.dumps(dict(rows[1], problem="Was ist $1+1$?"))
                                         + "\n", encoding="utf-8")
    (d / "math500_ja.jsonl").write_text(json.dumps(rows[1]) + "\n", encoding="utf-8")
    multi = read_math500(str(d))
    assert sorted(q.language for q in multi) == ["de", "ja"]
    (d / "broken_sw.jsonl").write_text('{"problem": "x"}\n', encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="broken_sw.jsonl:1"):
        read_math500(str(d))
