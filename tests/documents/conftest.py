"""Fixtures for the documents tests: the demo corpus and tokenizer (from tests/tokenizer), used
where a test follows documents into the TFDS builder or the tokenization job."""

from tests.tokenizer.conftest import demo_dir, demo_tokenizer  # noqa: F401
