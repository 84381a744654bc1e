"""QA readers on small files in the published layouts (MKQA, MLQA, XOR-TyDi QA), the
``--format`` path of ``launch.rag run``, and the answer-language rate with the real language
identifier."""

import gzip
import json

import pytest

from eurollm_jax.rag import AnswerLanguage, CorpusError
from eurollm_jax.rag import readers

MKQA = [
    {"example_id": 101, "query": "who wrote faust",
     "queries": {"en": "who wrote faust", "de": "wer schrieb faust", "fr": "qui a écrit faust"},
     "answers": {"en": [{"type": "entity", "text": "Johann Wolfgang von Goethe",
                         "aliases": ["Goethe"]}],
                 "de": [{"type": "entity", "text": "Johann Wolfgang von Goethe",
                         "aliases": ["Goethe"]}],
                 "fr": [{"type": "unanswerable", "text": None}]}},
    {"example_id": 102, "query": "how many legs does a spider have",
     "queries": {"en": "how many legs does a spider have", "de": "wie viele beine hat eine spinne"},
     "answers": {"en": [{"type": "number", "text": "8", "aliases": ["eight"]}],
                 "de": [{"type": "number", "text": "8", "aliases": ["acht"]}]}},
]

MLQA = {"version": "1.0", "data": [{"title": "Faust", "paragraphs": [
    {"context": "Faust ist eine Tragödie von Johann Wolfgang von Goethe.",
     "qas": [{"id": "m1", "question": "Wer schrieb Faust?",
              "answers": [{"text": "Johann Wolfgang von Goethe", "answer_start": 28}]}]}]}]}


def test_mkqa(tmp_path):
    path = tmp_path / "mkqa.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(x) + "\n" for x in MKQA))
    queries = readers.read("mkqa", str(path), languages=["de", "fr"])
    assert [(q.id, q.language) for q in queries] == [("101-de", "de"), ("102-de", "de")]
    assert queries[0].extra["answers"] == ["Johann Wolfgang von Goethe", "Goethe"]
    assert queries[1].extra["answers"] == ["8", "acht"]
    assert len(readers.read("mkqa", str(path), limit=1)) == 2  # one per language (en, de)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x"}\n')
    with pytest.raises(CorpusError, match="bad.jsonl:1: MKQA example without"):
        readers.read("mkqa", str(bad))


def test_mlqa_and_its_passages(tmp_path):
    path = tmp_path / "test-context-de-question-en.json"
    path.write_text(json.dumps(MLQA), encoding="utf-8")
    (q,) = readers.read("mlqa", str(path))
    assert (q.id, q.language, q.extra["answers"]) == ("m1", "en", ["Johann Wolfgang von Goethe"])
    (p,) = readers.mlqa_passages(str(path))
    assert p.language == "de" and p.title == "Faust" and "Tragödie" in p.text
    other = tmp_path / "mlqa.json"
    other.write_text(json.dumps(MLQA))
    with pytest.raises(CorpusError, match="context-<c>-question-<q>"):
        readers.read("mlqa", str(other))


def test_xor_tydi(tmp_path):
    path = tmp_path / "xor_dev_full_v1_1.jsonl"
    path.write_text(json.dumps({"id": "x1", "question": "Wie hoch ist die Zugspitze?",
                                "answers": ["2962 m"], "lang": "de"}) + "\n" +
                    json.dumps({"id": "x2", "question": "?", "answers": [], "lang": "fi"}) + "\n")
    queries = readers.read("xor_tydi", str(path))
    assert [q.id for q in queries] == ["x1"] and queries[0].extra["answers"] == ["2962 m"]
    with pytest.raises(CorpusError, match="no xor_tydi questions"):
        readers.read("xor_tydi", str(path), languages=["ja"])


def test_answer_language_with_the_real_identifier():
    labels = AnswerLanguage()(["Die Hauptstadt von Deutschland ist Berlin.",
                               "La capitale de l'Italie est Rome.", "", None])
    assert labels == ["de", "fr", None, None]
