"""Fixtures of the RAG tests: a small multilingual corpus with gold answers, the tiny random
model (in process and served over real HTTP by ``inference.server.running_server``), and a
scripted OpenAI-compatible "strong model" whose DRAG answers read document [1] (a random tiny
model only writes gibberish, so trace filtering and perturbations need a scripted teacher)."""

import json
import re

import pytest

from eurollm_jax.rag import Passage, Query
from tests.inference.conftest import hf_dir, tokenizer_path  # noqa: F401 (fixtures)
from tests.llm.helpers import scripted_app, serve, tiny_engine

PASSAGES = [
    Passage("en-paris", "The capital of France is Paris.", "en"),
    Passage("de-paris", "Die Hauptstadt von Frankreich ist Paris.", "de"),
    Passage("en-berlin", "The capital of Germany is Berlin.", "en"),
    Passage("de-berlin", "Die Hauptstadt von Deutschland ist Berlin.", "de"),
    Passage("fr-rome", "La capitale de l'Italie est Rome.", "fr"),
    Passage("en-rome", "The capital of Italy is Rome.", "en"),
    Passage("fr-madrid", "La capitale de l'Espagne est Madrid.", "fr"),
    Passage("en-madrid", "The capital of Spain is Madrid.", "en"),
]
QUERIES = [
    Query("q-de", "Was ist die Hauptstadt von Deutschland?", "de", {"answers": ["Berlin"]}),
    Query("q-fr", "Quelle est la capitale de l'Italie ?", "fr", {"answers": ["Rome"]}),
    Query("q-en", "What is the capital of Spain?", "en", {"answers": ["Madrid"]}),
    Query("q-de2", "Was ist die Hauptstadt von Frankreich?", "de", {"answers": ["Paris"]}),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def first_document_answer(prompt: str) -> str:
    """The last word of document [1] in a RAG or DRAG prompt ("" when there is none)."""
    m = re.search(r"^\[1\][^\n]*?(\w+)\W*$", prompt, re.M)
    return m.group(1) if m else ""


def respond(mode, payload, body):
    """The scripted strong model: translations, plain RAG answers, DRAG traces, judge verdicts.
    A question about Spain gets a judge "no"; a DRAG trace for the French question about
    Italy repeats its #Answer: section (the parser counts it)."""
    prompt = payload[-1]["content"] if mode == "chat" else payload
    if prompt.startswith("Translate the following"):
        return "EN: " + prompt.split("\n\n", 1)[1]
    if "Reply with yes or no only." in prompt:
        return "no" if "Spain" in prompt else "yes"
    answer = first_document_answer(prompt)
    if "#Answer:" in prompt:
        trace = (f"#Extraction: [1] mentions {answer}.\n#Explanation: [1] says \"{answer}\".\n"
                 f"#Dialectic Argumentation: [1] is the strongest evidence.\n#Answer: {answer}")
        if "Question: Quelle est la capitale de l'Italie" in prompt:
            trace += f"\n#Answer: {answer}"
        return trace
    return f"{answer}\nbecause of document 1"


@pytest.fixture(scope="session")
def engine():
    return tiny_engine()


@pytest.fixture(scope="module")
def served(engine):
    """base_url of the tiny engine behind ``launch.serve``'s app (static batching)."""
    pytest.importorskip("uvicorn")
    from eurollm_jax.inference.server import ServerConfig, running_server

    config = ServerConfig(model_name="tiny", max_batch_size=16, batching="static",
                          batch_wait_s=0.02)
    with running_server(engine, config) as url:
        yield url


@pytest.fixture(scope="module")
def scripted():
    pytest.importorskip("uvicorn")
    with serve(scripted_app(respond)) as url:
        yield url
