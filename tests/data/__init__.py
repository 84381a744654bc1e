"""Tests of eurollm_jax.data."""
