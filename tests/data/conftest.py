"""Fixtures shared by the data tests (the demo corpus and tokenizer come from tests/tokenizer)."""

from tests.tokenizer.conftest import demo_dir, demo_tokenizer  # noqa: F401
