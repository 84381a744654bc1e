"""Fixtures for the evaluation tests: the inference tests' tiny SentencePiece tokenizer and
random tiny HF Llama checkpoint (transformers is the independent peer)."""

from tests.inference.conftest import (  # noqa: F401  (pytest fixtures)
    engine,
    hf_dir,
    hf_model,
    jax_model,
    tokenizer,
    tokenizer_path,
)
