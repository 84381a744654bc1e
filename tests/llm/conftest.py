"""Fixtures for the LLM client tests: a tiny random engine and the real server over HTTP."""

import pytest

from tests.llm.helpers import CountingApp, serve, tiny_engine


@pytest.fixture(scope="session")
def engine():
    return tiny_engine()


@pytest.fixture(scope="module")
def served(engine):
    """(base_url, CountingApp) of ``inference.server.create_app`` on the tiny engine."""
    pytest.importorskip("uvicorn")
    from eurollm_jax.inference.server import ServerConfig, create_app

    # static batching runs the engine's own generate_ids (compiled once for both transports);
    # the continuous scheduler, launch.serve's default, is served in the slow tests
    app = CountingApp(create_app(engine, ServerConfig(model_name="tiny", max_batch_size=16,
                                                      batching="static", batch_wait_s=0.02)))
    with serve(app) as url:
        yield url, app
