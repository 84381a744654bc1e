"""The RAG strategies end to end: on the tiny random model in process and over real HTTP
(``running_server``, i.e. ``launch.serve``'s app) with identical greedy answers, and on the
scripted strong model, whose answers read document [1], to check what each strategy retrieves
and translates; metrics and the run table."""

import json

import pytest

from eurollm_jax.llm import LLMClient
from eurollm_jax.rag import (
    STRATEGIES,
    TEMPLATES,
    answer_span,
    build_index,
    flexible_exact_match,
    run_strategies,
    summarise,
    translate,
    write_run,
)
from eurollm_jax.rag.cli import main as rag_main
from tests.rag.conftest import PASSAGES, QUERIES, write_jsonl


class FixedLanguage:
    """Answer-language labels from a table (the real identifier is tested in test_metrics)."""

    def __call__(self, texts):
        return ["de" if " ist " in f" {t} " else "en" for t in texts]


@pytest.fixture(scope="module")
def index():
    return build_index(PASSAGES, "bm25")


def test_every_strategy_in_process_and_over_http_gives_the_same_answers(engine, served, index):
    queries = QUERIES[:1]
    local = LLMClient.from_engine(engine, model_name="tiny")
    http = LLMClient.from_endpoint(served, "tiny", concurrency=4)
    runs = [run_strategies(queries, index, c, k=1, max_tokens=4, answer_language=FixedLanguage())
            for c in (local, http)]
    for run in runs:
        assert [(r["strategy"], r["id"]) for r in run["records"]] == \
            [(s, q.id) for s in STRATEGIES for q in queries]
        assert all(r["error"] is None and isinstance(r["generation"], str)
                   for r in run["records"])
    assert [r["generation"] for r in runs[0]["records"]] == \
        [r["generation"] for r in runs[1]["records"]]
    assert [r["prompt"] for r in runs[0]["records"]] == [r["prompt"] for r in runs[1]["records"]]
    assert runs[1]["usage"]["generator"]["requests"] > 0


def test_strategies_retrieve_translate_and_score_as_specified(scripted, index, tmp_path):
    client = LLMClient.from_endpoint(scripted, "scripted", concurrency=4)
    run = run_strategies(QUERIES, index, client, k=2, answer_language=FixedLanguage())
    by = {(r["strategy"], r["id"]): r for r in run["records"]}
    # monoRAG: the question-language corpus only
    assert by["monorag", "q-de"]["documents"][0] == "de-berlin"
    assert all(d.startswith("de-") for d in by["monorag", "q-de"]["documents"])
    assert all(d.startswith("fr-") for d in by["monorag", "q-fr"]["documents"])
    # tRAG: the question translated into English, retrieval in the English corpus
    assert by["trag", "q-de"]["question_en"] == "EN: Was ist die Hauptstadt von Deutschland?"
    assert all(d.startswith("en-") for d in by["trag", "q-de"]["documents"])
    assert by["trag", "q-en"]["question_en"] == "What is the capital of Spain?"  # pass-through
    # MultiRAG: the mixed index, passages in their own languages
    multi = by["multirag", "q-de"]
    assert "(German) Die Hauptstadt von Deutschland ist Berlin." in multi["prompt"]
    # CrossRAG: same hits as MultiRAG, non-English passages translated into English
    cross = by["crossrag", "q-de"]
    assert cross["hits"] == multi["hits"]
    assert "(English) EN: Die Hauptstadt von Deutschland ist Berlin." in cross["prompt"]
    assert "answer in German, not in English" in cross["prompt"]
    # norag: no documents; the scripted model has nothing to read
    assert by["norag", "q-de"]["documents"] == [] and by["norag", "q-de"]["em"] == 0.0
    for s in ("monorag", "multirag"):
        assert by[s, "q-de"]["answer"] == "Berlin" and by[s, "q-de"]["em"] == 1.0
    assert by["crossrag", "q-de"]["answer"] == "Berlin"
    # the translation step: every non-English question (tRAG) and passage (CrossRAG), once each
    stats = run["translation"]
    assert stats["failed"] == 0 and stats["translated"] > 0
    table = write_run(str(tmp_path), run["records"], {"translation": stats})["table"]
    assert set(table) == set(STRATEGIES)
    assert table["monorag"]["de"]["n"] == 2 and table["monorag"]["avg"]["n"] == 4
    assert table["monorag"]["de"]["em"] == 1.0
    assert table["norag"]["avg"]["em"] == 0.0
    assert (tmp_path / "table.md").read_text().startswith("| strategy | de | en | fr | avg |")
    assert (tmp_path / "table.png").stat().st_size > 1000
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == len(run["records"])


def test_cli_run_against_a_served_model(served, tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [p.to_dict() for p in PASSAGES])
    queries = write_jsonl(tmp_path / "q.jsonl", [q.to_dict() for q in QUERIES[:1]])
    assert rag_main(["index", f"--corpus={corpus}", "--retriever=bm25",
                     f"--output={tmp_path / 'idx'}"]) == 0
    out = tmp_path / "run"
    assert rag_main(["run", f"--index={tmp_path / 'idx'}", f"--queries={queries}",
                     f"--output={out}", f"--endpoint={served}", "--model_name=tiny", "--k=1",
                     "--max_tokens=4", "--strategies=monorag,multirag",
                     f"--cache_dir={tmp_path / 'cache'}"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["table"]) == {"monorag", "multirag"}
    assert "| monorag |" in capsys.readouterr().out
    # the rerun answers everything from the cache
    assert rag_main(["run", f"--index={tmp_path / 'idx'}", f"--queries={queries}",
                     f"--output={out}", f"--endpoint={served}", "--model_name=tiny", "--k=1",
                     "--max_tokens=4", "--strategies=monorag,multirag",
                     f"--cache_dir={tmp_path / 'cache'}"]) == 0
    usage = json.loads((out / "results.json").read_text())["usage"]["generator"]
    assert usage["cached"] == 2 and usage["requests"] == 0
    with pytest.raises(SystemExit, match="unknown"):
        rag_main(["run", f"--index={tmp_path / 'idx'}", f"--queries={queries}",
                  f"--output={out}", f"--endpoint={served}", "--strategies=hyde"])


def test_templates_answer_span_and_flexible_exact_match():
    assert set(TEMPLATES) == set(STRATEGIES)
    assert all(t.rstrip().endswith("Answer:") for t in TEMPLATES.values())
    assert answer_span("\n  Answer: Paris, France\nsecond line") == "Paris, France"
    assert answer_span(None) == ""
    assert flexible_exact_match("It is Paris, France.", ["paris"]) == 1.0
    assert flexible_exact_match("In 1940 it happened", ["40"]) == 0.0  # word boundaries
    assert flexible_exact_match("Ｂｅｒｌｉｎ!", ["berlin"]) == 1.0  # NFKC, case-folded
    assert flexible_exact_match("", ["x"]) == 0.0
    assert flexible_exact_match("São Paulo", ["sao paulo"]) == 0.0  # accents are kept
    rows = [{"strategy": "a", "language": "de", "em": 1.0}, {"strategy": "a", "language": "de",
                                                             "em": 0.0},
            {"strategy": "a", "language": "fr", "em": 1.0}]
    table = summarise(rows, keys=("em",))
    assert table["a"]["de"]["em"] == 0.5 and table["a"]["avg"]["em"] == 0.75  # macro mean


def test_translate_counts_failures_and_keeps_the_original():
    from eurollm_jax.llm import LLMResult

    class Client:
        usage = {}

        def chat(self, conversations, **kw):
            out = []
            for c in conversations:
                text = c[0]["content"].split("\n\n", 1)[1]
                out.append(LLMResult(text=None, finish_reason=None, error="server: down",
                                     prompt_tokens=0, completion_tokens=0, cached=False)
                           if "fail" in text else
                           LLMResult(text=f'"{text.upper()}"', finish_reason="stop", error=None,
                                     prompt_tokens=1, completion_tokens=1, cached=False))
            return out

    texts, stats = translate(Client(), ["hallo", "fail me", "hello", "hallo"],
                             ["de", "de", "en", "de"], "en")
    assert texts == ["HALLO", "fail me", "hello", "HALLO"]
    assert stats.to_dict() == {"requested": 4, "translated": 1, "passthrough": 1, "failed": 1,
                               "cached": 0}
