"""Tiny models and solutions shared by the PRM tests."""

from eurollm_jax.model import ModelConfig, create_model
from eurollm_jax.tokenizer import ByteTokenizer

SOLUTIONS = [
    ("Start with 3. Add 4. Subtract 2.", ["3 plus 4 is 7.", "7 minus 2 is 5.", "The answer is 5."],
     [True, True, True]),
    ("Beginne mit 9. Subtrahiere 8.", ["9 minus 8 ist 2.", "Die Antwort lautet 2."],
     [False, False]),
    ("Commence par 1. Ajoute 5.", ["1 plus 5 font 6.", "La réponse est 6."], [True, True]),
]


def tiny_model(seed: int = 0, max_seq_len: int = 128):
    cfg = ModelConfig(vocab_size=261, d_model=32, num_layers=2, num_heads=2, num_kv_heads=1,
                      head_dim=16, ffn_dim=64, max_seq_len=max_seq_len,
                      compute_dtype="float32", param_dtype="float32", attention_impl="xla")
    return create_model(cfg, seed=seed)


def tokenizer():
    return ByteTokenizer()
