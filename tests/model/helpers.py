"""Small model configs and the attention error bound shared by the model tests."""

import numpy as np

from eurollm_jax.model import ModelConfig


def small_config(**overrides) -> ModelConfig:
    values = dict(
        vocab_size=301, d_model=64, num_layers=2, num_heads=8, num_kv_heads=2, head_dim=16,
        ffn_dim=96, max_seq_len=256, compute_dtype="float32", param_dtype="float32",
        attention_impl="xla",
    )
    values.update(overrides)
    return ModelConfig(**values)


def attention_error_bound(q, k, v, *, unit_roundoff: float = 2.0**-24) -> float:
    """The largest absolute difference two correct softmax-attention kernels may show when
    both compute in floating point with ``unit_roundoff`` (fp32: 2^-24), for q [B, T, H, D]
    and k/v [B, S, K, D] (K divides H): twice the worst-case error of each against the
    exact result. Higham's gamma_n = n u / (1 - n u) bounds the relative error of an
    n-term sum or dot product:

    - logits q.k / sqrt(D): absolute error delta <= gamma_{D+1} max_ts sum_i |q_ti k_si| / sqrt(D);
    - probabilities (max shift, exp, a sum of S terms, one division; an online softmax
      rescales at most once more per key): relative error <= e^{2 delta} - 1 + gamma_{2S+4};
    - output, a sum of S weighted values: relative error gamma_S, all times max |v|.
    """
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    b, t, h, d = q.shape
    s, kv_heads = k.shape[1], k.shape[2]
    qa = np.abs(q).reshape(b, t, kv_heads, h // kv_heads, d)
    logit_abs = np.einsum("btkgd,bskd->bkgts", qa, np.abs(k)).max() / np.sqrt(d)

    def gamma(n):
        return n * unit_roundoff / (1 - n * unit_roundoff)

    delta = gamma(d + 1) * logit_abs
    rel = np.expm1(2 * delta) + gamma(2 * s + 4) + gamma(s)
    return float(2 * rel * np.abs(v).max())
