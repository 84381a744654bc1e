"""Small model configs shared by the model tests."""

from eurollm_jax.model import ModelConfig


def small_config(**overrides) -> ModelConfig:
    values = dict(
        vocab_size=301, d_model=64, num_layers=2, num_heads=8, num_kv_heads=2, head_dim=16,
        ffn_dim=96, max_seq_len=256, compute_dtype="float32", param_dtype="float32",
        attention_impl="xla",
    )
    values.update(overrides)
    return ModelConfig(**values)
