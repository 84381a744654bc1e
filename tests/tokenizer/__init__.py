"""Tests of eurollm_jax.tokenizer."""
