"""Fixtures of the synthesis tests: seed files with the malformed cases tagged (see
``scripted.py``), the scripted endpoint, and the tiny model served over real HTTP."""

import json

import pytest

from tests.llm.helpers import CountingApp, scripted_app, serve, tiny_engine
from tests.synthesis.scripted import ANSWERS, respond

EUROBLOCKS_SEEDS = [
    {"id": "en-volcano", "language": "en", "prompt": "Explain how volcanoes form."},
    {"id": "en-water", "language": "en", "prompt": "Describe the water cycle in nature."},
    {"id": "en-volcano-copy", "language": "en", "prompt": "Explain how volcanoes form!"},
    {"id": "en-low", "language": "en", "prompt": "Summarise the history of printing [low]"},
    {"id": "en-garbled", "language": "en", "prompt": "Tell me about honey bees [garbled]"},
    {"id": "de-wrong", "language": "de", "prompt": "Erkläre die Photosynthese [wrong-language]"},
    {"id": "fr-empty", "language": "fr", "prompt": "Parle-moi de la Révolution [empty]"},
    {"id": "de-fridge", "language": "de", "prompt": "Wie funktioniert ein Kühlschrank?"},
]
XL_SEEDS = [
    {"id": "de-berlin", "language": "de",
     "text": "Berlin ist die Hauptstadt von Deutschland. " + ANSWERS["de"]},
    {"id": "de-hamburg", "language": "de",
     "text": "Hamburg hat einen großen Hafen. " + ANSWERS["de"]},
    {"id": "fr-paris", "language": "fr",
     "text": "Paris est la capitale de la France. " + ANSWERS["fr"]},
    {"id": "fr-lyon", "language": "fr",
     "text": "Lyon est connue pour sa cuisine [nomarker]. " + ANSWERS["fr"]},
    {"id": "es-madrid", "language": "es",
     "text": "Madrid es la capital de España [wrong-language]. " + ANSWERS["es"]},
]
CONTEXT_SEEDS = [{"id": f"qa{i}", "task": "single_doc_qa", "question": f"What is fact {i}?",
                  "answer": f"Fact {i} is the number {i * 7}."} for i in range(5)] + [
    {"id": "sum-nomarker", "task": "summarization", "question": "Summarise it [nomarker]",
     "answer": "A summary."},
    {"id": "sum-meeting", "task": "summarization", "question": "Summarise the meeting",
     "answer": "They met and agreed."},
    {"id": "sum-short", "task": "summarization", "question": "Summarise the talk [short]",
     "answer": "A talk."},
]
SEEDS = {"euroblocks": EUROBLOCKS_SEEDS, "xl_instruct": XL_SEEDS, "context": CONTEXT_SEEDS}
SETTINGS = {
    "euroblocks": {"euroblocks": {"languages": ["en", "de", "fr", "es"], "min_per_language": 2}},
    "xl_instruct": {"xl_instruct": {"top_k": 1}},
    "context": {"context": {"num_distractors": 3, "min_context_words": 20}},
}


def write_seeds(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return str(path)


def job_config(pipeline, seeds_path, base_url, *, shard_size=3, **sections):
    config = {"job": {"pipeline": pipeline, "seeds": seeds_path},
              "llm": {"base_url": base_url, "model": "scripted", "concurrency": 4},
              "runner": {"shard_size": shard_size, "progress": False}}
    for name, values in dict(SETTINGS[pipeline], **sections).items():
        config.setdefault(name, {}).update(values)
    return config


@pytest.fixture(scope="module")
def scripted():
    """(base_url, CountingApp) of the scripted OpenAI-compatible endpoint."""
    pytest.importorskip("uvicorn")
    app = CountingApp(scripted_app(respond))
    with serve(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def engine():
    return tiny_engine()


@pytest.fixture(scope="module")
def served_tiny(engine):
    """(base_url, CountingApp) of ``inference.server.create_app`` on the tiny random model."""
    pytest.importorskip("uvicorn")
    from eurollm_jax.inference.server import ServerConfig, create_app

    # static batching runs the engine's own generate_ids (compiled once for both transports);
    # the continuous scheduler, launch.serve's default, is served in the slow tests
    app = CountingApp(create_app(engine, ServerConfig(model_name="tiny", max_batch_size=16,
                                                      batching="static", batch_wait_s=0.02)))
    with serve(app) as url:
        yield url, app
